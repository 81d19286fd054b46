"""Small cleaning helpers I keep copying between projects."""
import re

import pandas as pd


def snake(name: str) -> str:
    name = re.sub(r"[^0-9a-zA-Z]+", "_", name.strip())
    return re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", name).lower().strip("_").replace("__", "_")


def clean_columns(df: pd.DataFrame) -> pd.DataFrame:
    return df.rename(columns=snake)


def missing_report(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"missing": df.isna().sum(), "share": df.isna().mean().round(3)})
    return out[out.missing > 0].sort_values("missing", ascending=False)
