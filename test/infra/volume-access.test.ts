// The EC2 and EBS rights of the functions (infra/constructs/volume-access.ts): each role holds only what its
// steps call, snapshots are touched only when tagged openvbs:project, and only Describe* is unscoped.
import { describe, expect, it } from 'vitest';
import { VOLUME_ACCESS } from '../../infra/constructs/volume-access.ts';
import { functionLogicalId } from '../../infra/handlers.ts';
import { HANDLER_NAMES } from '../../lib/workflows/registry.ts';
import type { HandlerName } from '../../lib/workflows/registry.ts';
import { actionsOf, joinIntrinsic, resourcesOf, roleStatements, template } from './helpers.ts';

const tpl = template();
const statements = (name: HandlerName) => roleStatements(tpl, `${functionLogicalId(name)}Role`).filter((s) => actionsOf(s).some((a) => /^(ec2|ebs):/.test(a)));
const actions = (name: HandlerName) => [...new Set(statements(name).flatMap(actionsOf))].sort();

describe('EC2 and EBS rights', () => {
  it('every function runs the ebs provider', () => {
    for (const name of HANDLER_NAMES) {
      const env = (tpl.Resources[functionLogicalId(name)]!.Properties!.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(env.OPENVBS_VOLUME_PROVIDER, name).toBe('ebs');
    }
  });

  it('only the handlers that use volumes have any EC2 or EBS right', () => {
    const holders = HANDLER_NAMES.filter((n) => actions(n).length > 0);
    expect(holders.sort()).toEqual(Object.keys(VOLUME_ACCESS).sort());
  });

  it('reads blocks in backup-segment only, starts, writes and finishes a restore snapshot in the three restore steps, powers servers in the server restore steps only', () => {
    const having = (action: string) => HANDLER_NAMES.filter((n) => actions(n).includes(action)).sort();
    expect(having('ebs:GetSnapshotBlock')).toEqual(['backup-segment']);
    expect(having('ebs:StartSnapshot')).toEqual(['restore-prepare']);
    expect(having('ebs:PutSnapshotBlock')).toEqual(['restore-segment']);
    expect(having('ebs:CompleteSnapshot')).toEqual(['restore-commit']);
    expect(having('ec2:AttachVolume')).toEqual(['restore-commit']);
    expect(having('ec2:CreateVolume')).toEqual(['restore-commit']);
    expect(actions('restore-segment')).toEqual(['ebs:PutSnapshotBlock']);
    // Whatever may drop a volume's kept snapshot or a failed one's: the commits, fail paths and deletes.
    expect(having('ec2:DeleteSnapshot')).toEqual(
      ['backup-commit', 'backup-fail', 'backup-prepare', 'delete-backup', 'delete-checkpoint', 'execution-failed', 'restore-commit', 'restore-fail', 'restore-prepare', 'server-backup-commit', 'server-backup-fail', 'server-backup-prepare', 'server-restore-fail'].sort(),
    );
    expect(having('ec2:StopInstances')).toEqual(['server-restore-commit', 'server-restore-prepare']);
    expect(having('ec2:CreateSnapshots')).toEqual(['backup-prepare', 'server-backup-prepare']);
    expect(actions('backup-segment')).toEqual(['ebs:GetSnapshotBlock', 'ebs:ListChangedBlocks', 'ebs:ListSnapshotBlocks', 'ec2:DescribeSnapshots']);
    expect(actions('server-backup-commit')).toEqual(['ec2:DeleteSnapshot', 'ec2:DescribeSnapshots']);
  });

  it('scopes every action but Describe*: snapshots and instances by the openvbs:project tag', () => {
    let checked = 0;
    for (const name of Object.keys(VOLUME_ACCESS) as HandlerName[]) {
      for (const s of statements(name)) {
        const resources = resourcesOf(s).map(joinIntrinsic);
        if (resources.includes('*')) {
          for (const a of actionsOf(s)) expect(a, `${name}: ${a} on *`).toMatch(/^ec2:Describe/);
          continue;
        }
        const onTagged = JSON.stringify(s.Condition ?? {}).includes('openvbs:project');
        for (const r of resources) {
          if (/:instance\/\*$/.test(r) || (/::snapshot\/\*$/.test(r) && !actionsOf(s).includes('ec2:CreateTags'))) {
            expect(onTagged, `${name} ${s.Sid} on ${r}`).toBe(true);
            checked++;
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(10);
  });
});
