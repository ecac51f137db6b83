// Pure helpers of search results: the snippet cut into plain and highlighted pieces. No DOM:
// the view makes <mark> elements of the pieces, from text (the snippet is never HTML).

export interface Piece {
  text: string;
  mark: boolean;
}

/**
 * `snippet` cut at the [start, end) ranges of `highlights`, counted in characters (Unicode code
 * points, as the server counts them: an emoji is one, not two UTF-16 units): the highlighted
 * pieces marked. Ranges may come unsorted, overlapping or out of bounds; they are clamped and
 * merged. Joined back, the pieces are the snippet.
 */
export function splitHighlights(snippet: string, highlights: readonly (readonly [number, number])[]): Piece[] {
  const chars = Array.from(snippet);
  const text = (a: number, b: number) => chars.slice(a, b).join("");
  const ranges = highlights
    .map(([a, b]) => [Math.max(0, Math.min(a, chars.length)), Math.max(0, Math.min(b, chars.length))] as const)
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  const pieces: Piece[] = [];
  let at = 0;
  for (const [a, b] of ranges) {
    if (b <= at) continue;
    const from = Math.max(a, at);
    if (from > at) pieces.push({ text: text(at, from), mark: false });
    const last = pieces.at(-1);
    if (last?.mark && from === at) last.text += text(from, b);
    else pieces.push({ text: text(from, b), mark: true });
    at = b;
  }
  if (at < chars.length) pieces.push({ text: text(at, chars.length), mark: false });
  return pieces;
}

/** Whether a query is worth sending: the server refuses an empty one (422). */
export function searchable(query: string): boolean {
  return query.trim().length > 0;
}
