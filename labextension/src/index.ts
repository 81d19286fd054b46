/**
 * JupyterLab plugin: the Containers sidebar, notebook toolbar buttons (open the panel; run again with the
 * last settings), palette commands and a file-browser item.
 */

import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { CommandToolbarButton, Dialog, ICommandPalette, showDialog, ToolbarButton } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import type { DocumentRegistry } from '@jupyterlab/docregistry';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { LabIcon } from '@jupyterlab/ui-components';

import { ContainersPanel, SaveOutcome } from './panel';
import { baseName, isJobOutput, KernelMetadataGuard, saveAction } from './state';

const PLUGIN_ID = 'jupyter-containerize:plugin';

export const containerIcon = new LabIcon({
  name: 'jupyter-containerize:container',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24"><path class="jp-icon3" fill="#616161" ' +
    'd="M21 7.5 12 2.3 3 7.5v9L12 21.7l9-5.2v-9zM12 4.6l6.5 3.7L12 12 5.5 8.3 12 4.6zM5 10l6 3.4v5.8L5 15.8V10zm8 9.2v-5.8l6-3.4v5.8l-6 3.4z"/></svg>'
});

export namespace CommandIDs {
  export const runCurrent = 'containerize:run-current';
  export const runFile = 'containerize:run-file';
  export const open = 'containerize:open-panel';
  export const runAgain = 'containerize:run-again';
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Run a notebook as a reproducible container job.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILabShell, ICommandPalette, IFileBrowserFactory, IRenderMimeRegistry, IDocumentManager],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    labShell: ILabShell | null,
    palette: ICommandPalette | null,
    browsers: IFileBrowserFactory | null,
    rendermime: IRenderMimeRegistry | null,
    docManager: IDocumentManager | null
  ) => {
    /** The open document of `path`: its notebook panel, else any editor the docmanager knows. */
    const contextOf = (path: string): DocumentRegistry.Context | null => {
      const nb = tracker.find(w => w.context.path === path);
      if (nb) {
        return nb.context;
      }
      const widget = docManager?.findWidget(path);
      return (widget && docManager?.contextForWidget(widget)) || null;
    };

    /** A job runs the notebook on disk: save unsaved changes first, or ask when they cannot be saved. */
    const saveBeforeRun = async (path: string): Promise<SaveOutcome> => {
      const context = contextOf(path);
      const action = saveAction({
        open: !!context,
        dirty: !!context?.model.dirty,
        writable: context?.contentsModel?.writable !== false
      });
      if (action === 'none' || !context) {
        return 'clean';
      }
      let why = 'the file is read-only';
      if (action === 'save') {
        try {
          await context.save();
          return 'saved';
        } catch (e) {
          if (e instanceof Error && (e.name === 'ModalCancelError' || e.name === 'ModalDuplicateError')) {
            return 'cancelled'; // the user cancelled JupyterLab's own question (the file changed on disk…)
          }
          why = e instanceof Error ? e.message : String(e);
        }
      }
      const answer = await showDialog({
        title: 'Unsaved changes',
        body:
          `${baseName(path)} has changes that could not be saved (${why}). ` +
          'A job runs the notebook as saved on disk, without them.',
        buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Run the saved version' })]
      });
      return answer.button.accept ? 'unsaved' : 'cancelled';
    };

    const panel = new ContainersPanel({
      open: path => void app.commands.execute('docmanager:open', { path }),
      saveBeforeRun,
      rendermime // the sweep comparison's plot: JupyterLab's own Vega renderer
    });
    panel.title.icon = containerIcon;
    app.shell.add(panel, 'left', { rank: 600 });

    // Output notebooks of jobs (…/<name>.jc-jobs/<id>/…) are results, not something to run again.
    const follow = () => {
      const current = tracker.currentWidget;
      if (current && !isJobOutput(current.context.path)) {
        panel.path = current.context.path;
      }
    };
    tracker.currentChanged.connect(follow);
    tracker.widgetAdded.connect((_, nb) => {
      nb.context.pathChanged.connect(follow);
      // A save may change the parameters cell: the form reads it again.
      nb.context.fileChanged.connect(() => panel.notebookSaved.emit(nb.context.path));
      if (isJobOutput(nb.context.path)) {
        keepUnchangedByTheKernel(nb);
      }
    });
    follow();

    const reveal = () => app.shell.activateById(panel.id);

    app.commands.addCommand(CommandIDs.open, {
      label: 'Show the Containers panel',
      icon: containerIcon,
      execute: reveal
    });
    /** The notebook a command acts on: the one whose toolbar holds the button, else the current one. */
    const notebookOf = (args: { notebook?: unknown }): NotebookPanel | null =>
      (typeof args.notebook === 'string' && tracker.find(w => w.id === args.notebook)) || tracker.currentWidget;
    app.commands.addCommand(CommandIDs.runAgain, {
      label: 'Run again with last settings',
      caption: 'Run this notebook as a container job again, with the options last used for it in the Containers panel',
      icon: containerIcon,
      isEnabled: args => {
        const nb = notebookOf(args);
        return !!nb && panel.lastOptions(nb.context.path) !== null;
      },
      execute: args => {
        const nb = notebookOf(args);
        if (nb) {
          reveal();
          panel.runAgain(nb.context.path);
        }
      }
    });
    panel.lastOptionsChanged.connect(() => app.commands.notifyCommandChanged(CommandIDs.runAgain));
    tracker.currentChanged.connect(() => app.commands.notifyCommandChanged(CommandIDs.runAgain));
    app.commands.addCommand(CommandIDs.runCurrent, {
      label: 'Run as container job',
      caption: 'Build an image for this notebook and run it as a container job',
      icon: containerIcon,
      isEnabled: () => tracker.currentWidget !== null,
      execute: () => {
        const current = tracker.currentWidget;
        if (!current) {
          return;
        }
        reveal();
        panel.run(current.context.path); // saves unsaved changes first
      }
    });
    app.commands.addCommand(CommandIDs.runFile, {
      label: 'Run as container job',
      icon: containerIcon,
      isVisible: () => {
        const item = browsers?.tracker.currentWidget?.selectedItems().next();
        return !!item && !item.done && item.value.path.endsWith('.ipynb');
      },
      execute: () => {
        const item = browsers?.tracker.currentWidget?.selectedItems().next();
        if (item && !item.done) {
          reveal();
          panel.run(item.value.path);
        }
      }
    });

    palette?.addItem({ command: CommandIDs.runCurrent, category: 'Containers' });
    palette?.addItem({ command: CommandIDs.runAgain, category: 'Containers' });
    palette?.addItem({ command: CommandIDs.open, category: 'Containers' });
    app.contextMenu.addItem({
      command: CommandIDs.runFile,
      selector: '.jp-DirListing-item[data-file-type="notebook"]',
      rank: 3
    });

    tracker.widgetAdded.connect((_, nb: NotebookPanel) => {
      // Opens the panel on this notebook, where its options are set before Build & Run.
      const button = new ToolbarButton({
        icon: containerIcon,
        label: 'Container',
        tooltip: 'Open the Containers panel to run this notebook as a container job',
        className: 'jc-ToolbarButton',
        onClick: () => {
          tracker.currentWidget !== nb && app.shell.activateById(nb.id);
          if (!isJobOutput(nb.context.path)) {
            panel.path = nb.context.path;
          }
          reveal();
        }
      });
      nb.toolbar.insertAfter('cellType', 'containerize', button);
      const again = new CommandToolbarButton({
        commands: app.commands,
        id: CommandIDs.runAgain,
        args: { notebook: nb.id },
        label: 'Run again'
      });
      again.addClass('jc-RunAgainButton');
      nb.toolbar.insertAfter('containerize', 'containerize-run-again', again);
    });
    void labShell;
  }
};

/** An output notebook opens unchanged: the kernel's name and language written into its metadata are no edit. */
function keepUnchangedByTheKernel(nb: NotebookPanel): void {
  const model = nb.context.model;
  const guard = new KernelMetadataGuard();
  model.metadataChanged.connect((_, change) => guard.metadata(change.key));
  model.stateChanged.connect((_, change) => {
    if (change.name === 'dirty' && guard.dirty(!!change.newValue)) {
      model.dirty = false;
    }
  });
}

export default plugin;
