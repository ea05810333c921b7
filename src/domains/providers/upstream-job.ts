import type { z } from "zod";
import { ProviderError, type ProviderOutput, type UpstreamJob } from "./types.js";

/**
 * For upstreams that keep jobs by id (fal, Replicate): a job an earlier run submitted is polled
 * again rather than submitted (and paid for) twice. Only when the upstream no longer knows it (a
 * 4xx: `upstream_404`, `upstream_400`, …) is a new one submitted. The handle is reported through
 * `job.submitted` before polling, so a crash after that point leaves it to be resumed.
 */
export async function resumeOrSubmit<Handle extends Record<string, unknown>, Out = ProviderOutput>(
  job: UpstreamJob | undefined,
  handle: z.ZodType<Handle>,
  submit: () => Promise<Handle>,
  finish: (handle: Handle) => Promise<Out>,
): Promise<Out> {
  const resumed = handle.safeParse(job?.resume);
  if (resumed.success) {
    try {
      return await finish(resumed.data);
    } catch (err) {
      // By its HTTP status, not its kind: a 400 is the caller's kind (see failure in http.ts), but
      // on a resumed handle it means the upstream no longer has the job.
      if (!(err instanceof ProviderError && /^upstream_4\d\d$/.test(err.code))) throw err;
    }
  }
  const submitted = await submit();
  await job?.submitted(submitted);
  return finish(submitted);
}
