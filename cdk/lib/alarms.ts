import { Aws } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { Conditions } from './conditions';
import { Functions } from './functions';
import { REFRESH_PERIODS, ResolvedProps } from './props';
import { Queues } from './queues';

interface AlarmSpec {
  readonly description: string;
  readonly namespace: string;
  readonly metric: string;
  readonly dimensions: [string, string][];
  readonly statistic: 'Sum' | 'Minimum' | 'Maximum';
  readonly period: number;
  readonly evaluationPeriods: number;
  readonly threshold: number;
  readonly comparison: 'GreaterThanOrEqualToThreshold' | 'GreaterThanThreshold' | 'LessThanThreshold';
  /** notBreaching unless a silence is itself the finding (a stopped schedule). */
  readonly missing?: 'breaching';
}

const CUSTOM = 'GenesysVirtualAgent';

/**
 * The 19 alarms of infra/README.md's "Alarms" table (18 in PerEvent, 19
 * with the batch queue's; the two rule alarms only with SingleOrg), L1 as
 * the template writes them; each notifies AlarmTopicArn when set.
 */
export function createAlarms(scope: Construct, p: ResolvedProps, c: Conditions, q: Queues, fns: Functions, api: apigwv2.CfnApi): string[] {
  const fnName = (f: lambda.Function): [string, string][] => [['FunctionName', f.functionName]];
  const custom = (fn: string): [string, string][] => [['Function', fn]];
  const period = REFRESH_PERIODS[p.refreshPeriodMinutes];
  const ruleDimensions: [string, string][] = [['EventBusName', p.genesysEventSourceName], ['RuleName', `${Aws.STACK_NAME}-conversation-events`]];
  const specs: Record<string, AlarmSpec | undefined> = {
    RefreshFailuresAlarm: {
      description: 'The token refresher failed to refresh a slot.',
      namespace: CUSTOM, metric: 'TokenRefreshFailed', dimensions: custom('token-refresher'),
      statistic: 'Sum', period: 300, evaluationPeriods: 2, threshold: 1, comparison: 'GreaterThanOrEqualToThreshold',
    },
    TokenExpiryAlarm: {
      description: 'A token slot has less than two refresher periods and 30 s left after a tick (its refresh is not landing; it expires soon).',
      namespace: CUSTOM, metric: 'TokenExpiresInSeconds', dimensions: custom('token-refresher'),
      statistic: 'Minimum', period: period.seconds, evaluationPeriods: 1, threshold: period.expiryAlarmSeconds, comparison: 'LessThanThreshold',
    },
    DeadLettersAlarm: {
      description: 'Events that could not be counted are waiting in the dead-letter queue.',
      namespace: 'AWS/SQS', metric: 'ApproximateNumberOfMessagesVisible', dimensions: [['QueueName', q.deadLetterQueue.attrQueueName]],
      statistic: 'Maximum', period: 300, evaluationPeriods: 1, threshold: 0, comparison: 'GreaterThanThreshold',
    },
    HandlerErrorsAlarm: {
      description: 'conversation-events invocations are failing (DynamoDB; malformed events do not fail, they are dead-lettered).',
      namespace: 'AWS/Lambda', metric: 'Errors', dimensions: fnName(fns.ConversationEventsFunction),
      statistic: 'Sum', period: 300, evaluationPeriods: 1, threshold: 5, comparison: 'GreaterThanOrEqualToThreshold',
    },
    RejectedEventsAlarm: {
      description: 'Malformed events were rejected and dead-lettered with their reason.',
      namespace: CUSTOM, metric: 'RejectedEvents', dimensions: custom('conversation-events'),
      statistic: 'Sum', period: 300, evaluationPeriods: 1, threshold: 1, comparison: 'GreaterThanOrEqualToThreshold',
    },
    RuleFailedInvocationsAlarm: c.singleOrg ? {
      description: 'The Genesys rule failed to invoke its target after its retries (see the dead-letter queue and InvocationsSentToDlq).',
      namespace: 'AWS/Events', metric: 'FailedInvocations', dimensions: ruleDimensions,
      statistic: 'Sum', period: 300, evaluationPeriods: 1, threshold: 1, comparison: 'GreaterThanOrEqualToThreshold',
    } : undefined,
    RuleDeadLetterFailuresAlarm: c.singleOrg ? {
      description: 'The Genesys rule could not send failed events to the dead-letter queue (events lost).',
      namespace: 'AWS/Events', metric: 'InvocationsFailedToBeSentToDlq', dimensions: ruleDimensions,
      statistic: 'Sum', period: 60, evaluationPeriods: 1, threshold: 1, comparison: 'GreaterThanOrEqualToThreshold',
    } : undefined,
    DestinationDeliveryFailuresAlarm: {
      description: 'conversation-events could not send a failed event to its on-failure destination (events lost).',
      namespace: 'AWS/Lambda', metric: 'DestinationDeliveryFailures', dimensions: fnName(fns.ConversationEventsFunction),
      statistic: 'Sum', period: 60, evaluationPeriods: 1, threshold: 1, comparison: 'GreaterThanOrEqualToThreshold',
    },
    FunctionDeadLetterErrorsAlarm: {
      description: 'conversation-events could not write to a function dead-letter queue (events lost).',
      namespace: 'AWS/Lambda', metric: 'DeadLetterErrors', dimensions: fnName(fns.ConversationEventsFunction),
      statistic: 'Sum', period: 60, evaluationPeriods: 1, threshold: 1, comparison: 'GreaterThanOrEqualToThreshold',
    },
    FunctionThrottlesAlarm: {
      description: "conversation-events is throttled at its reserved concurrency; events wait in Lambda's async queue.",
      namespace: 'AWS/Lambda', metric: 'Throttles', dimensions: fnName(fns.ConversationEventsFunction),
      statistic: 'Sum', period: 300, evaluationPeriods: 2, threshold: 10, comparison: 'GreaterThanOrEqualToThreshold',
    },
    EventQueueAgeAlarm: c.batchDelivery && q.eventQueue ? {
      description: 'Events wait more than 5 minutes in the batch queue (the function is behind).',
      namespace: 'AWS/SQS', metric: 'ApproximateAgeOfOldestMessage', dimensions: [['QueueName', q.eventQueue.attrQueueName]],
      statistic: 'Maximum', period: 300, evaluationPeriods: 1, threshold: 300, comparison: 'GreaterThanThreshold',
    } : undefined,
    SweeperErrorsAlarm: {
      description: "enrichment-sweeper invocations fail or time out (the registry, or an org's sweep; sessions wait and hours are not rolled up).",
      namespace: 'AWS/Lambda', metric: 'Errors', dimensions: fnName(fns.EnrichmentSweeperFunction),
      statistic: 'Sum', period: 300, evaluationPeriods: 1, threshold: 2, comparison: 'GreaterThanOrEqualToThreshold',
    },
    SweeperThrottlesAlarm: {
      description: "enrichment-sweeper is throttled (the account's concurrency is used up, or its reservation is too small).",
      namespace: 'AWS/Lambda', metric: 'Throttles', dimensions: fnName(fns.EnrichmentSweeperFunction),
      statistic: 'Sum', period: 300, evaluationPeriods: 1, threshold: 1, comparison: 'GreaterThanOrEqualToThreshold',
    },
    SweeperNotRunningAlarm: {
      description: 'enrichment-sweeper has not run for 15 minutes (its schedule is disabled or it cannot start).',
      namespace: 'AWS/Lambda', metric: 'Invocations', dimensions: fnName(fns.EnrichmentSweeperFunction),
      statistic: 'Sum', period: 900, evaluationPeriods: 1, threshold: 1, comparison: 'LessThanThreshold', missing: 'breaching',
    },
    EnrichmentItemFailuresAlarm: {
      description: "A pending session's enrichment write keeps failing after its retries (its key and error are in the sweeper's log; the others go on).",
      namespace: CUSTOM, metric: 'EnrichmentItemFailures', dimensions: custom('enrichment-sweeper'),
      statistic: 'Sum', period: 300, evaluationPeriods: 1, threshold: 1, comparison: 'GreaterThanOrEqualToThreshold',
    },
    RollUpFailuresAlarm: {
      description: 'The hourly roll-up failed in three sweeps of 15 minutes (long dashboard ranges fall back to minute cells and slow down).',
      namespace: CUSTOM, metric: 'RollUpFailures', dimensions: custom('enrichment-sweeper'),
      statistic: 'Sum', period: 900, evaluationPeriods: 1, threshold: 3, comparison: 'GreaterThanOrEqualToThreshold',
    },
    OldestPendingSessionAlarm: {
      description: 'A bot session has waited more than two hours for its intent (the analytics API is behind or does not list it, the sweeper is behind, or an item keeps failing).',
      namespace: CUSTOM, metric: 'OldestPendingSeconds', dimensions: custom('enrichment-sweeper'),
      statistic: 'Maximum', period: 300, evaluationPeriods: 3, threshold: 7200, comparison: 'GreaterThanThreshold',
    },
    DashboardErrorsAlarm: {
      description: 'The dashboard answers with server errors (5xx), as when its function fails, times out or is throttled.',
      namespace: 'AWS/ApiGateway', metric: '5xx', dimensions: [['ApiId', api.ref]],
      statistic: 'Sum', period: 300, evaluationPeriods: 1, threshold: 5, comparison: 'GreaterThanOrEqualToThreshold',
    },
    RefresherNotRunningAlarm: {
      description: 'token-refresher has not run for 15 minutes (tokens will expire and the fleet fall back to single-flight recovery).',
      namespace: 'AWS/Lambda', metric: 'Invocations', dimensions: fnName(fns.TokenRefresherFunction),
      statistic: 'Sum', period: 900, evaluationPeriods: 1, threshold: 1, comparison: 'LessThanThreshold', missing: 'breaching',
    },
  };

  const created: string[] = [];
  for (const [id, s] of Object.entries(specs)) {
    if (!s) continue;
    new cloudwatch.CfnAlarm(scope, id, {
      alarmDescription: s.description,
      namespace: s.namespace,
      metricName: s.metric,
      dimensions: s.dimensions.map(([name, value]) => ({ name, value })),
      statistic: s.statistic,
      period: s.period,
      evaluationPeriods: s.evaluationPeriods,
      threshold: s.threshold,
      comparisonOperator: s.comparison,
      treatMissingData: s.missing ?? 'notBreaching',
      alarmActions: c.hasAlarmTopic ? [p.alarmTopicArn] : undefined,
    });
    created.push(id);
  }
  return created;
}
