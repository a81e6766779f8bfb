/**
 * The share page's script (served as /viewer/share.js, so the page needs no inline script): starts
 * Mol*'s viewer and loads the link's file. `window.molvaultShare` says how it went, for people
 * reading the console and for the browser test.
 */
export const SHARE_SCRIPT = `(function () {
  'use strict';
  var config = JSON.parse(document.getElementById('molvault-share').textContent);
  var status = document.getElementById('viewer-status');
  var share = (window.molvaultShare = { state: 'loading', viewer: null, error: null });
  if (!config.molstarFormat) {
    share.state = 'no-preview';
    status.textContent = 'There is no 3D preview for this format; download the file instead.';
    return;
  }
  if (typeof molstar === 'undefined') {
    share.state = 'failed';
    share.error = 'Mol* did not load';
    status.textContent = 'The 3D viewer could not start.';
    return;
  }
  molstar.Viewer.create('viewer', {
    layoutIsExpanded: false,
    layoutShowControls: false,
    layoutShowRemoteState: false,
    layoutShowSequence: true,
    layoutShowLog: false,
    layoutShowLeftPanel: false,
    viewportShowExpand: true,
    viewportShowSelectionMode: false,
    viewportShowAnimation: false,
    collapseLeftPanel: true,
  })
    .then(function (viewer) {
      share.viewer = viewer;
      status.remove();
      return viewer.loadStructureFromUrl(config.fileUrl, config.molstarFormat, config.binary);
    })
    .then(function () {
      share.state = 'loaded';
    })
    .catch(function (error) {
      share.state = 'failed';
      share.error = String(error && error.message ? error.message : error);
      var message = document.createElement('div');
      message.id = 'viewer-status';
      message.textContent = 'The 3D view could not load this file; download it instead.';
      document.getElementById('viewer').appendChild(message);
    });
})();
`;
