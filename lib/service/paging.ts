// Marker and offset paging over a list the service has already filtered and sorted, as VBS lists page.
import { notFound } from './errors.ts';

export const MAX_PAGE = 1000;

export interface PageRequest {
  offset?: number;
  /** 1..MAX_PAGE; default MAX_PAGE. */
  limit?: number;
  /** Id of the last item of the previous page. */
  marker?: string;
}

export interface Page<T> {
  items: T[];
  /** Set when more items follow: the marker of the next page. */
  nextMarker?: string;
  /** The limit applied. */
  limit: number;
}

export const pageLimit = (limit: number | undefined) => Math.min(Math.max(limit ?? MAX_PAGE, 1), MAX_PAGE);

/** The page after the item whose id is `marker` (404 OpenVBS.0404 when there is none, as OpenStack answers), skipping `offset` more. */
export function pageOf<T>(items: readonly T[], request: PageRequest, idOf: (item: T) => string): Page<T> {
  const limit = pageLimit(request.limit);
  let start = 0;
  if (request.marker !== undefined) {
    const at = items.findIndex((item) => idOf(item) === request.marker);
    if (at < 0) throw notFound(`marker ${request.marker} not found`);
    start = at + 1;
  }
  start += Math.max(request.offset ?? 0, 0);
  const page = items.slice(start, start + limit);
  const more = start + limit < items.length;
  return { items: page, limit, ...(more && page.length ? { nextMarker: idOf(page[page.length - 1]!) } : {}) };
}
