interface Pending<In, Out> {
  input: In;
  resolve: (output: Out) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: calls that arrive while a statement is in flight wait and go together in the
 * next one, one statement and one commit (one WAL flush) for all of them. A write that locks a
 * hot row (a user account's balance) holds the lock until its commit, so alone such writes go
 * one commit at a time; grouped, a commit carries many. At low load a call goes at once, so
 * nothing waits for a timer.
 *
 * `runMany` answers each input in order, refusals included (each succeeds or fails on its own).
 * When it throws (an unexpected failure: a lost connection, one bad input), every input is
 * retried alone through `runOne`, so one call cannot fail the others; callers give their inputs
 * ids, so a retry of one that did commit is a replay.
 */
export class GroupCommit<In, Out> {
  private queue: Array<Pending<In, Out>> = [];
  private inFlight = 0;

  constructor(
    private readonly runMany: (inputs: In[]) => Promise<Out[]>,
    private readonly runOne: (input: In) => Promise<Out>,
    private readonly options: {
      maxBatch: number;
      maxInFlight: number;
      /** Told the size of each group that went as one statement. */
      onGroup?: (size: number) => void;
    } = { maxBatch: 256, maxInFlight: 2 },
  ) {}

  submit(input: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (this.inFlight < this.options.maxInFlight) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.inFlight++;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, this.options.maxBatch);
        await this.run(batch);
      }
    } finally {
      this.inFlight--;
    }
  }

  private async run(batch: Array<Pending<In, Out>>): Promise<void> {
    let outputs: Out[];
    try {
      outputs = await this.runMany(batch.map((p) => p.input));
      this.options.onGroup?.(batch.length);
    } catch {
      await Promise.all(batch.map((p) => this.runOne(p.input).then(p.resolve, p.reject)));
      return;
    }
    outputs.forEach((output, i) => {
      (batch[i] as Pending<In, Out>).resolve(output);
    });
  }
}

const groupsByOwner = new WeakMap<object, Map<string, GroupCommit<never, unknown>>>();

/**
 * The one group commit of the statement `name` on `owner` (a database handle), made on first
 * use so that every caller of one statement on one database shares its groups. `runMany` runs
 * the statement for many inputs; alone, an input is that statement run for one.
 */
export function groupCommitFor<In, Out>(
  owner: object,
  name: string,
  runMany: (inputs: In[]) => Promise<Out[]>,
  onGroup?: (size: number) => void,
): GroupCommit<In, Out> {
  let groups = groupsByOwner.get(owner);
  if (!groups) {
    groups = new Map();
    groupsByOwner.set(owner, groups);
  }
  let group = groups.get(name) as GroupCommit<In, Out> | undefined;
  if (!group) {
    group = new GroupCommit<In, Out>(runMany, async (one) => (await runMany([one]))[0] as Out, {
      maxBatch: 256,
      maxInFlight: 2,
      ...(onGroup && { onGroup }),
    });
    groups.set(name, group as unknown as GroupCommit<never, unknown>);
  }
  return group;
}
