import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { VERSION } from '../lib';
import { MODES, synth } from './helpers';

type Cond = 'always' | 'MultiOrg' | 'SingleOrg' | 'BatchDelivery' | 'SingleOrgBatch' | 'SingleOrgPerEvent' | 'MultiOrgPerEvent';

/** Every resource of infra/template.yaml after SAM's transform (its logical id, type, condition). */
const SAM: [string, string, Cond][] = [
  ['DataKey', 'AWS::KMS::Key', 'always'], ['TokenKey', 'AWS::KMS::Key', 'always'], ['QueueKey', 'AWS::KMS::Key', 'always'],
  ['TokenTable', 'AWS::DynamoDB::Table', 'always'], ['TenantTable', 'AWS::DynamoDB::Table', 'MultiOrg'], ['AnalyticsTable', 'AWS::DynamoDB::Table', 'always'],
  ['DeadLetterQueue', 'AWS::SQS::Queue', 'always'], ['EventQueue', 'AWS::SQS::Queue', 'BatchDelivery'],
  ['EventQueuePolicy', 'AWS::SQS::QueuePolicy', 'BatchDelivery'], ['BatchRule', 'AWS::Events::Rule', 'SingleOrgBatch'],
  ['BatchEventSource', 'AWS::Lambda::EventSourceMapping', 'BatchDelivery'], ['PerEventRule', 'AWS::Events::Rule', 'SingleOrgPerEvent'],
  ['PerEventRulePermission', 'AWS::Lambda::Permission', 'SingleOrgPerEvent'], ['OrgRulesPermission', 'AWS::Lambda::Permission', 'MultiOrgPerEvent'],
  ['DeadLetterQueuePolicy', 'AWS::SQS::QueuePolicy', 'always'], ['DashboardUserPool', 'AWS::Cognito::UserPool', 'always'],
  ['DashboardUserPoolClient', 'AWS::Cognito::UserPoolClient', 'always'], ['DashboardAccessLogs', 'AWS::Logs::LogGroup', 'always'],
  ['OperatorPolicy', 'AWS::IAM::ManagedPolicy', 'always'], ['DashboardOrgReaderRole', 'AWS::IAM::Role', 'MultiOrg'],
  ['TokenRefresherLogs', 'AWS::Logs::LogGroup', 'always'], ['ConversationEventsLogs', 'AWS::Logs::LogGroup', 'always'],
  ['EnrichmentSweeperLogs', 'AWS::Logs::LogGroup', 'always'], ['DashboardApiLogs', 'AWS::Logs::LogGroup', 'always'],
  ...(['RefreshFailuresAlarm', 'TokenExpiryAlarm', 'DeadLettersAlarm', 'HandlerErrorsAlarm', 'RejectedEventsAlarm', 'DestinationDeliveryFailuresAlarm',
    'FunctionDeadLetterErrorsAlarm', 'FunctionThrottlesAlarm', 'SweeperErrorsAlarm', 'SweeperThrottlesAlarm', 'SweeperNotRunningAlarm',
    'EnrichmentItemFailuresAlarm', 'RollUpFailuresAlarm', 'OldestPendingSessionAlarm', 'DashboardErrorsAlarm', 'RefresherNotRunningAlarm',
  ].map((a) => [a, 'AWS::CloudWatch::Alarm', 'always'] as [string, string, Cond])),
  ['RuleFailedInvocationsAlarm', 'AWS::CloudWatch::Alarm', 'SingleOrg'], ['RuleDeadLetterFailuresAlarm', 'AWS::CloudWatch::Alarm', 'SingleOrg'],
  ['EventQueueAgeAlarm', 'AWS::CloudWatch::Alarm', 'BatchDelivery'],
  ['TokenRefresherFunction', 'AWS::Lambda::Function', 'always'], ['TokenRefresherFunctionRole', 'AWS::IAM::Role', 'always'],
  ['TokenRefresherFunctionTick', 'AWS::Events::Rule', 'always'], ['TokenRefresherFunctionTickPermission', 'AWS::Lambda::Permission', 'always'],
  ['ConversationEventsFunction', 'AWS::Lambda::Function', 'always'], ['ConversationEventsFunctionEventInvokeConfig', 'AWS::Lambda::EventInvokeConfig', 'always'],
  ['ConversationEventsFunctionRole', 'AWS::IAM::Role', 'always'],
  ['EnrichmentSweeperFunction', 'AWS::Lambda::Function', 'always'], ['EnrichmentSweeperFunctionRole', 'AWS::IAM::Role', 'always'],
  ['EnrichmentSweeperFunctionSweep', 'AWS::Events::Rule', 'always'], ['EnrichmentSweeperFunctionSweepPermission', 'AWS::Lambda::Permission', 'always'],
  ['DashboardApiFunction', 'AWS::Lambda::Function', 'always'], ['DashboardApiFunctionRole', 'AWS::IAM::Role', 'always'],
  ...(['Page', 'Data', 'LiveData', 'Orgs', 'SignIn'].map((e) => [`DashboardApiFunction${e}Permission`, 'AWS::Lambda::Permission', 'always'] as [string, string, Cond])),
  ['DashboardHttpApi', 'AWS::ApiGatewayV2::Api', 'always'], ['DashboardHttpApiApiGatewayDefaultStage', 'AWS::ApiGatewayV2::Stage', 'always'],
];

function holds(cond: Cond, mode: string): boolean {
  const multi = mode.startsWith('Multi');
  const batch = mode.endsWith('Batch');
  return {
    always: true, MultiOrg: multi, SingleOrg: !multi, BatchDelivery: batch,
    SingleOrgBatch: !multi && batch, SingleOrgPerEvent: !multi && !batch, MultiOrgPerEvent: multi && !batch,
  }[cond];
}

test('exactly the resources SAM\'s transform makes, each a direct child named by its SAM logical id', () => {
  for (const [mode, props] of MODES) {
    const s = synth(props);
    const expected = SAM.filter(([, , cond]) => holds(cond, mode)).map(([id, type]) => `${id} ${type}`).sort();
    const actual = Object.entries(s.byId).map(([id, r]) => `${id} ${r.Type}`).sort();
    assert.deepEqual(actual, expected, mode);
    for (const r of Object.values(s.byId)) {
      const segs = r.Metadata['aws:cdk:path'].split('/');
      assert.ok(segs.length === 3 || (segs.length === 4 && segs[3] === 'Resource'), r.Metadata['aws:cdk:path']);
    }
  }
});

test('the outputs are the template\'s, with its output keys', () => {
  const base = ['Version', 'TokenRefresherFunctionName', 'ConversationEventsFunctionName', 'EnrichmentSweeperFunctionName', 'DashboardApiFunctionName',
    'TokenTableName', 'OperatorPolicyArn', 'ConversationEventsFunctionArn', 'DeadLetterQueueArn', 'EventTargetArn', 'AnalyticsTableName',
    'DashboardUrl', 'DashboardUserPoolId', 'DeadLetterQueueUrl'];
  const extra: Record<string, string[]> = {
    'SingleOrg PerEvent': [], 'SingleOrg Batch': ['EventQueueArn'], 'MultiOrg PerEvent': ['TenantTableName'], 'MultiOrg Batch': ['TenantTableName', 'EventQueueArn'],
  };
  for (const [mode, props] of MODES) {
    const outputs = synth(props).template.toJSON().Outputs;
    assert.deepEqual(Object.keys(outputs).sort(), [...base, ...extra[mode]].sort(), mode);
    assert.equal(outputs.Version.Value, VERSION);
    assert.deepEqual(outputs.ConversationEventsFunctionArn.Export, { Name: { 'Fn::Join': ['', [{ Ref: 'AWS::StackName' }, '-ConversationEventsFunctionArn']] } });
  }
});

test('the Version output is the Cargo workspace\'s version', () => {
  const cargo = fs.readFileSync(path.resolve(__dirname, '..', '..', 'Cargo.toml'), 'utf8');
  const workspace = cargo.slice(cargo.indexOf('[workspace.package]'));
  assert.equal(VERSION, /\nversion = "([^"]+)"/.exec(workspace)?.[1]);
});
