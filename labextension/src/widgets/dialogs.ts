/**
 * Dialog bodies.
 */
import { Dialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

/** A dialog body with one labelled text input; its value is the trimmed text. */
export class NameInput extends Widget implements Dialog.IBodyWidget<string> {
  constructor(value: string, label: string) {
    const node = document.createElement('label');
    node.className = 'jp-Envs-field';
    node.textContent = label;
    const input = document.createElement('input');
    input.value = value;
    input.name = 'clone-name';
    node.appendChild(input);
    super({ node });
    this._input = input;
  }

  /** The text typed. */
  getValue(): string {
    return this._input.value.trim();
  }

  protected onAfterAttach(): void {
    this._input.focus();
    this._input.select();
  }

  private _input: HTMLInputElement;
}
