const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const UTF16LE_BOM = Buffer.from([0xff, 0xfe]);
const UTF16BE_BOM = Buffer.from([0xfe, 0xff]);

/** How an editor's text becomes bytes: the encoding its saved file is in. */
export type BufferEncoding = 'utf8' | 'utf8bom' | 'utf16le' | 'utf16be';

/**
 * The encoding of a saved file, as far as its bytes tell: a byte-order mark, or valid
 * UTF-8. VS Code 1.90 does not tell extensions which encoding an editor uses, so a
 * file in a legacy encoding (Latin-1, Shift JIS...) cannot be told apart and is refused
 * rather than sent re-encoded. No saved file (an untitled editor): UTF-8, VS Code's default.
 */
export function encodingOfSaved(saved: Buffer | undefined): BufferEncoding | undefined {
  if (!saved) {
    return 'utf8';
  }
  if (saved.subarray(0, 3).equals(UTF8_BOM)) {
    return 'utf8bom';
  }
  if (saved.subarray(0, 2).equals(UTF16LE_BOM)) {
    return 'utf16le';
  }
  if (saved.subarray(0, 2).equals(UTF16BE_BOM)) {
    return 'utf16be';
  }
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(saved);
    return 'utf8';
  } catch {
    return undefined;
  }
}

/** The editor's text as the bytes its file would hold once saved (byte-order mark included). */
export function encodeText(text: string, encoding: BufferEncoding): Buffer {
  switch (encoding) {
    case 'utf8':
      return Buffer.from(text, 'utf8');
    case 'utf8bom':
      return Buffer.concat([UTF8_BOM, Buffer.from(text, 'utf8')]);
    case 'utf16le':
      return Buffer.concat([UTF16LE_BOM, Buffer.from(text, 'utf16le')]);
    case 'utf16be':
      return Buffer.concat([UTF16BE_BOM, Buffer.from(text, 'utf16le').swap16()]);
  }
}
