// Periodic rule target. Backup policies (schedules and retention) arrive with the policies issue; until
// then the tick has no policies to find and says so.
import { logger } from '../lib/workflows/observability.ts';

export const handler = async (): Promise<{ duePolicies: number }> => {
  logger.info('policy tick: no policy support yet');
  return { duePolicies: 0 };
};
