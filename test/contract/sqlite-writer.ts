// A separate process writing to a SQLite table file (table.test.ts runs several at once): `rounds` atomic
// additions to one counter and `rounds` create-if-absent claims, one per key. Prints how many claims it won.
import { ConditionFailedError, cond } from '../../lib/catalog/table.ts';
import { SqliteTable } from '../../lib/embedded/sqlite-table.ts';

const [file, owner, rounds] = process.argv.slice(2) as [string, string, string];
const table = new SqliteTable(file);
let won = 0;
for (let i = 0; i < Number(rounds); i++) {
  await table.update({ pk: 'COUNTER', sk: 'C' }, { add: { n: 1 } });
  try {
    await table.put({ pk: 'CLAIM', sk: String(i).padStart(4, '0'), owner }, cond.notExists());
    won++;
  } catch (err) {
    if (!(err instanceof ConditionFailedError)) throw err;
  }
}
table.close();
process.stdout.write(JSON.stringify({ won }));
