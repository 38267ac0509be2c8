// Counts the EBS direct API calls a client makes, by command (e.g. how many GetSnapshotBlock an incremental
// needs): `take(name)` answers the count since the last take of that command. `inspect` sees every call's input.
import type { EBSClient } from '@aws-sdk/client-ebs';

export function countEbsCalls(ebs: EBSClient, inspect?: (command: string, input: unknown) => void) {
  const counts = new Map<string, number>();
  ebs.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? '?';
      counts.set(name, (counts.get(name) ?? 0) + 1);
      inspect?.(name, args.input);
      return next(args);
    },
    { step: 'initialize', name: 'countEbsCalls' },
  );
  return {
    take(name: string): number {
      const n = counts.get(name) ?? 0;
      counts.delete(name);
      return n;
    },
  };
}
