// react-dom ships no types here (@types/react-dom is not a dependency); the tests need only this.
declare module 'react-dom/server' {
  import { ReactElement } from 'react';

  export function renderToStaticMarkup(element: ReactElement): string;
}
