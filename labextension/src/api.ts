/**
 * The one way the panel talks to the jupyter-envs REST API.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** The URL namespace of every jupyter-envs route, under the server's base_url. */
export const API_NAMESPACE = 'jupyter-envs';

/** The full URL of a jupyter-envs route (respects base_url). */
export function apiUrl(
  endPoint: string,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): string {
  return URLExt.join(settings.baseUrl, API_NAMESPACE, endPoint);
}

/** The WebSocket URL of a jupyter-envs route (respects base_url and wsUrl). */
export function wsUrl(
  endPoint: string,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): string {
  let url = URLExt.join(settings.wsUrl, API_NAMESPACE, endPoint);
  if (settings.token && settings.appendToken) {
    url += (url.includes('?') ? '&' : '?') + `token=${encodeURIComponent(settings.token)}`;
  }
  return url;
}

/** What a successful request returned: the parsed body and the response itself. */
export interface IAPIResponse<T> {
  data: T;
  response: Response;
}

/**
 * Call a jupyter-envs route and parse its JSON (or text) body.
 *
 * Throws `ServerConnection.NetworkError` when the server cannot be reached and
 * `ServerConnection.ResponseError` carrying the server's `message` for any non-2xx answer.
 */
export async function requestAPI<T>(
  endPoint = '',
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<IAPIResponse<T>> {
  const url = apiUrl(endPoint, settings);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: any = text;
  const type = response.headers.get('Content-Type') ?? '';
  if (text.length > 0 && (type.includes('json') || !type)) {
    try {
      data = JSON.parse(text);
    } catch {
      // Not JSON after all (a file download): keep the text.
    }
  }
  if (!response.ok) {
    // JSON errors carry a message; an HTML error page says nothing readable.
    const plain = typeof data === 'string' && !type.includes('html') && data.length < 500;
    const message =
      (data && typeof data === 'object' && (data.message || data.reason)) ||
      (plain && data.trim()) ||
      `${response.status} ${response.statusText || 'error'} (${endPoint.split('?')[0]})`;
    throw new ServerConnection.ResponseError(response, message);
  }
  return { data: data as T, response };
}

/** POST/DELETE/... a JSON body. */
export function jsonInit(method: string, body?: unknown): RequestInit {
  return body === undefined
    ? { method }
    : { method, body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } };
}

/** A readable message for any error the panel meets. */
export function errorMessage(error: unknown): string {
  if (error instanceof ServerConnection.ResponseError) {
    return error.message || `${error.response.status} ${error.response.statusText}`;
  }
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}
