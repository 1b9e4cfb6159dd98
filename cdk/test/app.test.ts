import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { Template } from 'aws-cdk-lib/assertions';
import { EXAMPLE_PROPS, STACK_NAME, createApp } from '../lib';

test('the example app: one stack, GenesysVaAnalytics, SingleOrg with example values, no CDKMetadata', () => {
  const { app, stack, construct } = createApp({ context: { bundling: 'false' } });
  assert.equal(stack.stackName, STACK_NAME);
  assert.equal(construct.props.tenancy, 'SingleOrg');
  assert.equal(construct.props.genesysSecretArn, EXAMPLE_PROPS.genesysSecretArn);
  app.synth(); // runs the cdk-nag validation plugin: throws on an unacknowledged finding
  Template.fromStack(stack).resourceCountIs('AWS::CDK::Metadata', 0);
});

test('`-c props=<file>` gives exactly those props (the defaults fill the rest)', () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'va-props-')), 'props.json');
  fs.writeFileSync(file, JSON.stringify({ tenancy: 'MultiOrg', deliveryMode: 'Batch' }));
  const { construct } = createApp({ context: { bundling: 'false', props: file } });
  assert.equal(construct.props.tenancy, 'MultiOrg');
  assert.equal(construct.props.deliveryMode, 'Batch');
  assert.equal(construct.props.genesysSecretArn, '');
  const inline = createApp({ context: { bundling: 'false', props: '{"tenancy":"MultiOrg","tokenPoolSize":3}' } }).construct;
  assert.equal(inline.props.tokenPoolSize, 3);
});

test('invalid props stop the app with the prop\'s name', () => {
  assert.throws(() => createApp({ context: { bundling: 'false', props: '{}' } }), /'genesysSecretArn' is required/);
  assert.throws(() => createApp({ context: { bundling: 'false', props: '{"tenancy":"MultiOrg","refreshPeriodMinutes":3}' } }), /'refreshPeriodMinutes'/);
});
