import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODES, MULTI_ORG, SINGLE_ORG, synth } from './helpers';

/** infra/template.yaml's alarms: [namespace, metric, statistic, period, evaluation periods, threshold, comparison, missing data]. */
const ALARMS: Record<string, [string, string, string, number, number, number, string, string]> = {
  RefreshFailuresAlarm: ['GenesysVirtualAgent', 'TokenRefreshFailed', 'Sum', 300, 2, 1, 'GreaterThanOrEqualToThreshold', 'notBreaching'],
  TokenExpiryAlarm: ['GenesysVirtualAgent', 'TokenExpiresInSeconds', 'Minimum', 60, 1, 150, 'LessThanThreshold', 'notBreaching'],
  DeadLettersAlarm: ['AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'Maximum', 300, 1, 0, 'GreaterThanThreshold', 'notBreaching'],
  HandlerErrorsAlarm: ['AWS/Lambda', 'Errors', 'Sum', 300, 1, 5, 'GreaterThanOrEqualToThreshold', 'notBreaching'],
  RejectedEventsAlarm: ['GenesysVirtualAgent', 'RejectedEvents', 'Sum', 300, 1, 1, 'GreaterThanOrEqualToThreshold', 'notBreaching'],
  RuleFailedInvocationsAlarm: ['AWS/Events', 'FailedInvocations', 'Sum', 300, 1, 1, 'GreaterThanOrEqualToThreshold', 'notBreaching'],
  RuleDeadLetterFailuresAlarm: ['AWS/Events', 'InvocationsFailedToBeSentToDlq', 'Sum', 60, 1, 1, 'GreaterThanOrEqualToThreshold', 'notBreaching'],
  DestinationDeliveryFailuresAlarm: ['AWS/Lambda', 'DestinationDeliveryFailures', 'Sum', 60, 1, 1, 'GreaterThanOrEqualToThreshold', 'notBreaching'],
  FunctionDeadLetterErrorsAlarm: ['AWS/Lambda', 'DeadLetterErrors', 'Sum', 60, 1, 1, 'GreaterThanOrEqualToThreshold', 'notBreaching'],
  FunctionThrottlesAlarm: ['AWS/Lambda', 'Throttles', 'Sum', 300, 2, 10, 'GreaterThanOrEqualToThreshold', 'notBreaching'],
  EventQueueAgeAlarm: ['AWS/SQS', 'ApproximateAgeOfOldestMessage', 'Maximum', 300, 1, 300, 'GreaterThanThreshold', 'notBreaching'],
  SweeperErrorsAlarm: ['AWS/Lambda', 'Errors', 'Sum', 300, 1, 2, 'GreaterThanOrEqualToThreshold', 'notBreaching'],
  SweeperThrottlesAlarm: ['AWS/Lambda', 'Throttles', 'Sum', 300, 1, 1, 'GreaterThanOrEqualToThreshold', 'notBreaching'],
  SweeperNotRunningAlarm: ['AWS/Lambda', 'Invocations', 'Sum', 900, 1, 1, 'LessThanThreshold', 'breaching'],
  EnrichmentItemFailuresAlarm: ['GenesysVirtualAgent', 'EnrichmentItemFailures', 'Sum', 300, 1, 1, 'GreaterThanOrEqualToThreshold', 'notBreaching'],
  RollUpFailuresAlarm: ['GenesysVirtualAgent', 'RollUpFailures', 'Sum', 900, 1, 3, 'GreaterThanOrEqualToThreshold', 'notBreaching'],
  OldestPendingSessionAlarm: ['GenesysVirtualAgent', 'OldestPendingSeconds', 'Maximum', 300, 3, 7200, 'GreaterThanThreshold', 'notBreaching'],
  DashboardErrorsAlarm: ['AWS/ApiGateway', '5xx', 'Sum', 300, 1, 5, 'GreaterThanOrEqualToThreshold', 'notBreaching'],
  RefresherNotRunningAlarm: ['AWS/Lambda', 'Invocations', 'Sum', 900, 1, 1, 'LessThanThreshold', 'breaching'],
};

test('all 19 alarms (SingleOrg Batch) with the template\'s metric, statistic, period and threshold', () => {
  assert.equal(Object.keys(ALARMS).length, 19);
  const s = synth({ ...SINGLE_ORG, deliveryMode: 'Batch' });
  s.template.resourceCountIs('AWS::CloudWatch::Alarm', 19);
  for (const [id, [ns, metric, stat, period, evals, threshold, cmp, missing]] of Object.entries(ALARMS)) {
    const p = s.byId[id]?.Properties;
    assert.ok(p, id);
    assert.deepEqual([p.Namespace, p.MetricName, p.Statistic, p.Period, p.EvaluationPeriods, p.Threshold, p.ComparisonOperator, p.TreatMissingData],
      [ns, metric, stat, period, evals, threshold, cmp, missing], id);
    assert.equal(p.AlarmActions, undefined, id);
  }
});

test('the alarms a mode has: 18 without the batch queue; no rule alarms with many orgs', () => {
  const counts = Object.fromEntries(MODES.map(([mode, props]) => [mode, synth(props).construct.alarmIds.length]));
  assert.deepEqual(counts, { 'SingleOrg PerEvent': 18, 'SingleOrg Batch': 19, 'MultiOrg PerEvent': 16, 'MultiOrg Batch': 17 });
});

test('alarm dimensions name this stack\'s function, queue, rule and API', () => {
  const s = synth({ ...SINGLE_ORG, deliveryMode: 'Batch' });
  const dim = (id: string) => s.byId[id].Properties.Dimensions;
  assert.deepEqual(dim('HandlerErrorsAlarm'), [{ Name: 'FunctionName', Value: { Ref: s.logicalId('ConversationEventsFunction') } }]);
  assert.deepEqual(dim('SweeperErrorsAlarm'), [{ Name: 'FunctionName', Value: { Ref: s.logicalId('EnrichmentSweeperFunction') } }]);
  assert.deepEqual(dim('RefresherNotRunningAlarm'), [{ Name: 'FunctionName', Value: { Ref: s.logicalId('TokenRefresherFunction') } }]);
  assert.deepEqual(dim('DeadLettersAlarm'), [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [s.logicalId('DeadLetterQueue'), 'QueueName'] } }]);
  assert.deepEqual(dim('EventQueueAgeAlarm'), [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [s.logicalId('EventQueue'), 'QueueName'] } }]);
  assert.deepEqual(dim('DashboardErrorsAlarm'), [{ Name: 'ApiId', Value: { Ref: s.logicalId('DashboardHttpApi') } }]);
  assert.deepEqual(dim('RuleFailedInvocationsAlarm')[0], { Name: 'EventBusName', Value: SINGLE_ORG.genesysEventSourceName });
  assert.deepEqual(dim('RefreshFailuresAlarm'), [{ Name: 'Function', Value: 'token-refresher' }]);
});

test('the token expiry alarm follows RefreshPeriodMinutes (two periods and 30 s)', () => {
  for (const [minutes, period, threshold] of [[1, 60, 150], [2, 120, 270], [5, 300, 630]] as const) {
    const p = synth({ ...SINGLE_ORG, refreshPeriodMinutes: minutes }).byId.TokenExpiryAlarm.Properties;
    assert.deepEqual([p.Period, p.Threshold], [period, threshold]);
  }
});

test('every alarm notifies AlarmTopicArn when set', () => {
  const topic = 'arn:aws:sns:us-east-1:123456789012:va-alarms';
  const s = synth({ ...MULTI_ORG, alarmTopicArn: topic });
  const alarms = Object.values(s.template.findResources('AWS::CloudWatch::Alarm'));
  assert.equal(alarms.length, 16);
  for (const a of alarms) assert.deepEqual(a.Properties.AlarmActions, [topic]);
});
