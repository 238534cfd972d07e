// html`…` templates build preact elements (htm): JSX without a build step.
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);
