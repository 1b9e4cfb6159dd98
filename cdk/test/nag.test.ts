import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AwsSolutionsChecks } from 'cdk-nag';
import { conditions } from '../lib/conditions';
import { nagAcknowledgements } from '../lib/nag';
import { resolveProps } from '../lib';
import { MODES, SECRET_KEY, synth } from './helpers';

test('cdk-nag AwsSolutions: no unacknowledged error or warning in any mode', () => {
  for (const [mode, props] of MODES) {
    for (const extra of [{}, { genesysSecretKeyArn: SECRET_KEY, alarmTopicArn: 'arn:aws:sns:us-east-1:123456789012:t', eventsReservedConcurrency: 50 }]) {
      const { stack } = synth({ ...props, ...extra });
      const report = new AwsSolutionsChecks().validateScope(stack);
      const found = report.violations.map((v) => `${v.severity} ${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`);
      assert.deepEqual(found, [], `${mode} ${JSON.stringify(extra)}`);
    }
  }
});

test('every acknowledgement names its finding, its constructs and a specific reason', () => {
  for (const [mode, props] of MODES) {
    const list = nagAcknowledgements(conditions(resolveProps(props)));
    const ids = list.map((a) => a.id);
    assert.equal(new Set(ids).size, ids.length, mode);
    for (const a of list) {
      assert.match(a.id, /^AwsSolutions-[A-Z]+\d+(\[.+\])?$/);
      // IAM findings are acknowledged one finding at a time, never a whole rule.
      if (a.id.startsWith('AwsSolutions-IAM')) assert.match(a.id, /\[(Policy|Action|Resource)::.+\]$/);
      assert.ok(a.on.length > 0);
      assert.ok(a.reason.length >= 80, `${a.id}: reason too short`);
    }
  }
});

test('an acknowledgement is needed: each one matches a finding of the bare checks', () => {
  for (const [mode, props] of MODES) {
    const { stack } = synth({ ...props, genesysSecretKeyArn: SECRET_KEY }, true);
    // The same stack with the construct's acknowledgements emptied (the
    // metadata entries share their data objects).
    const raw = new Set<string>();
    for (const c of stack.node.findAll()) {
      for (const m of c.node.metadata) {
        if (m.type === 'aws:cdk:acknowledged-rules') for (const k of Object.keys(m.data)) delete m.data[k];
      }
    }
    for (const v of new AwsSolutionsChecks().validateScope(stack).violations) raw.add(v.ruleName);
    for (const a of nagAcknowledgements(conditions(resolveProps(props)))) assert.ok(raw.has(a.id), `${mode}: ${a.id} acknowledges nothing`);
  }
});
