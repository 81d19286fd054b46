/** JupyterLab plugin: the Containers sidebar, a notebook toolbar button, a palette command and a file-browser item. */

import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, ToolbarButton } from '@jupyterlab/apputils';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { LabIcon } from '@jupyterlab/ui-components';

import { ContainersPanel } from './panel';

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
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Run a notebook as a reproducible container job.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILabShell, ICommandPalette, IFileBrowserFactory, IRenderMimeRegistry],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    labShell: ILabShell | null,
    palette: ICommandPalette | null,
    browsers: IFileBrowserFactory | null,
    rendermime: IRenderMimeRegistry | null
  ) => {
    const panel = new ContainersPanel({
      open: path => void app.commands.execute('docmanager:open', { path }),
      rendermime // the sweep comparison's plot: JupyterLab's own Vega renderer
    });
    panel.title.icon = containerIcon;
    app.shell.add(panel, 'left', { rank: 600 });

    // Output notebooks of jobs (…/<name>.jc-jobs/<id>/…) are results, not something to run again.
    const follow = () => {
      const current = tracker.currentWidget;
      if (current && !current.context.path.includes('.jc-jobs/')) {
        panel.path = current.context.path;
      }
    };
    tracker.currentChanged.connect(follow);
    tracker.widgetAdded.connect((_, nb) => nb.context.pathChanged.connect(follow));
    follow();

    const reveal = () => app.shell.activateById(panel.id);

    app.commands.addCommand(CommandIDs.open, {
      label: 'Show the Containers panel',
      icon: containerIcon,
      execute: reveal
    });
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
        void current.context.save().then(() => panel.run(current.context.path));
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
    palette?.addItem({ command: CommandIDs.open, category: 'Containers' });
    app.contextMenu.addItem({
      command: CommandIDs.runFile,
      selector: '.jp-DirListing-item[data-file-type="notebook"]',
      rank: 3
    });

    tracker.widgetAdded.connect((_, nb: NotebookPanel) => {
      const button = new ToolbarButton({
        icon: containerIcon,
        label: 'Container',
        tooltip: 'Run as container job',
        className: 'jc-ToolbarButton',
        onClick: () => {
          tracker.currentWidget !== nb && app.shell.activateById(nb.id);
          reveal();
          void nb.context.save().then(() => panel.run(nb.context.path));
        }
      });
      nb.toolbar.insertAfter('cellType', 'containerize', button);
    });
    void labShell;
  }
};

export default plugin;
