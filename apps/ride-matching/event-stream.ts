/**
 * A client of the service's server-sent events (GET /events): reads the
 * stream until it ends or `signal` aborts, calling `onEvent` for each event.
 * Rejects when the request fails or answers an error status.
 */
export async function readEvents(url: string, signal: AbortSignal, onEvent: (event: string, data: unknown) => void): Promise<void> {
  const res = await fetch(url, { signal, headers: { accept: 'text/event-stream' } });
  if (!res.ok || !res.body) throw new Error(`GET ${url}: ${res.status}`);
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(frame)?.[1];
      const data = /^data: (.*)$/m.exec(frame)?.[1];
      if (event && data !== undefined) onEvent(event, JSON.parse(data));
    }
  }
}
