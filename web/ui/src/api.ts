// Fetching strata's JSON APIs, all of which answer in Prometheus' envelope:
// {"status": "success" | "error", "data", "warnings", "infos", "error", "errorType"}.

// Response is an API answer with what the UI shows about it.
export interface Response<T> {
  data: T;
  warnings: string[];
  infos: string[];
  // extra are the top-level fields beyond the envelope's, such as cache
  // statistics a query frontend adds, shown as they are.
  extra: Record<string, unknown>;
  // headers are the response's X-Strata-* headers.
  headers: Record<string, string>;
  status: number;
  millis: number;
  bytes: number;
}

// APIError is a failed request: an error envelope, an HTTP error or a
// network failure. status is 0 for a network failure.
export class APIError extends Error {
  constructor(message: string, public status: number, public type = "") {
    super(message);
  }
}

const envelope = new Set(["status", "data", "warnings", "infos", "error", "errorType"]);

// get fetches path (with params as the query string) and unwraps the envelope.
export async function get<T>(path: string, params?: URLSearchParams, signal?: AbortSignal): Promise<Response<T>> {
  return request<T>(path + (params && [...params].length ? "?" + params.toString() : ""), { signal });
}

// post sends params as a form, as Prometheus clients do for long queries.
export async function post<T>(path: string, params: URLSearchParams, signal?: AbortSignal): Promise<Response<T>> {
  return request<T>(path, {
    method: "POST",
    body: params,
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    signal,
  });
}

async function request<T>(url: string, init: RequestInit): Promise<Response<T>> {
  const start = performance.now();
  let resp: globalThis.Response;
  try {
    resp = await fetch(url, init);
  } catch (e) {
    if ((e as Error).name === "AbortError") throw e;
    throw new APIError(`cannot reach strata: ${(e as Error).message}`, 0);
  }
  const text = await resp.text();
  const millis = performance.now() - start;
  let body: Record<string, unknown> | null = null;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: a plain-text error or a missing route.
  }
  if (!resp.ok || !body || body.status !== "success") {
    const msg = body && typeof body.error === "string" ? body.error : text.trim() || resp.statusText;
    throw new APIError(msg, resp.status, body && typeof body.errorType === "string" ? body.errorType : "");
  }
  const headers: Record<string, string> = {};
  resp.headers.forEach((v, k) => {
    if (k.toLowerCase().startsWith("x-strata-")) headers[k] = v;
  });
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) if (!envelope.has(k)) extra[k] = v;
  return {
    data: body.data as T,
    warnings: (body.warnings as string[]) ?? [],
    infos: (body.infos as string[]) ?? [],
    extra,
    headers,
    status: resp.status,
    millis,
    bytes: text.length,
  };
}
