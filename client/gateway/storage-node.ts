/** Bookmarks in a JSON file (Node): `bookmarks.json` in the gateway's folder of the state directory. */
import { existsSync, readFileSync } from 'node:fs';
import { writeJsonAtomic } from '../site-folder.js';
import type { BookmarkData, BookmarkStorage } from './bookmarks.js';

export function fileBookmarkStorage(file: string): BookmarkStorage {
  return {
    load() {
      if (!existsSync(file)) return null;
      try {
        return JSON.parse(readFileSync(file, 'utf8')) as BookmarkData;
      } catch {
        return null; // a damaged file: start again with no bookmarks
      }
    },
    save: (data) => writeJsonAtomic(file, data),
  };
}
