import * as vscode from 'vscode';
import type { DfsNode } from '../model/tree-model';

export interface DropUploader {
  upload(uris: readonly vscode.Uri[], prefix?: string): Promise<unknown>;
  readonly ownClientId: string;
}

/**
 * Files dropped from the Explorer arrive as `text/uri-list`, files from the OS as
 * `files` items; either way they upload. A drop on one of the user's own folders
 * stores the files inside that folder.
 */
export class DfsDragAndDropController implements vscode.TreeDragAndDropController<DfsNode> {
  readonly dropMimeTypes = ['text/uri-list', 'files'];
  readonly dragMimeTypes: string[] = [];

  constructor(private readonly uploader: DropUploader) {}

  async handleDrop(target: DfsNode | undefined, dataTransfer: vscode.DataTransfer, token: vscode.CancellationToken): Promise<void> {
    const uris = new Map<string, vscode.Uri>();
    const uriList = dataTransfer.get('text/uri-list');
    if (uriList) {
      for (const line of (await uriList.asString()).split(/\r?\n/)) {
        const text = line.trim();
        // RFC 2483: lines starting with # are comments.
        if (text.length > 0 && !text.startsWith('#')) {
          const uri = vscode.Uri.parse(text);
          uris.set(uri.toString(), uri);
        }
      }
    }
    dataTransfer.forEach((item) => {
      const file = item.asFile();
      if (file?.uri) {
        uris.set(file.uri.toString(), file.uri);
      }
    });
    if (token.isCancellationRequested || uris.size === 0) {
      return;
    }
    const prefix = target?.kind === 'folder' && target.clientId === this.uploader.ownClientId ? target.path : target?.kind === 'file' && target.clientId === this.uploader.ownClientId ? parentOf(target.record.name) : '';
    await this.uploader.upload([...uris.values()], prefix);
  }
}

function parentOf(name: string): string {
  const slash = name.lastIndexOf('/');
  return slash === -1 ? '' : name.slice(0, slash);
}
