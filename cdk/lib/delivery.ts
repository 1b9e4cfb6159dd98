import { Aws } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { Conditions, orgRulesArn } from './conditions';
import { ResolvedProps } from './props';
import { Queues } from './queues';

/** The Genesys Cloud conversation events the product counts. */
const EVENT_PATTERN = {
  source: [{ prefix: 'aws.partner/genesys.com' }],
  'detail-type': [
    'customer.start', 'customer.end', 'flow.start', 'flow.end', 'flow.outcome', 'acd.start', 'acd.end', 'user.start', 'user.end',
  ].map((t) => `v2.detail.events.conversation.{id}.${t}`),
};

/** EventBridge's retries: a day's worth, then the dead-letter queue. */
const RETRY_POLICY = { maximumRetryAttempts: 185, maximumEventAgeInSeconds: 86400 };

/**
 * How events reach conversation-events. SingleOrg: this stack's rule on the
 * org's partner bus, into the function (PerEvent) or the batch queue
 * (Batch). MultiOrg: each org's rule comes from infra/org.yaml; PerEvent
 * gets one permission for all of them (a permission per org would outgrow
 * Lambda's 20 KB policy). Batch: the queue's event source mapping.
 * Returns the batch rule's ARN (SingleOrg+Batch), which the queue's policy names.
 */
export function createDelivery(scope: Construct, p: ResolvedProps, c: Conditions, q: Queues, fn: lambda.Function): string | undefined {
  const rule = (id: string, description: string, target: events.CfnRule.TargetProperty) => new events.CfnRule(scope, id, {
    name: `${Aws.STACK_NAME}-conversation-events`,
    description,
    eventBusName: p.genesysEventSourceName,
    eventPattern: EVENT_PATTERN,
    targets: [{ ...target, retryPolicy: RETRY_POLICY, deadLetterConfig: { arn: q.deadLetterQueue.attrArn } }],
  });

  let batchRuleArn: string | undefined;
  if (c.singleOrgBatch && q.eventQueue) {
    batchRuleArn = rule('BatchRule', 'Genesys Cloud conversation events into the batch queue.', { id: 'EventQueue', arn: q.eventQueue.attrArn }).attrArn;
  }
  if (c.batchDelivery && q.eventQueue) {
    new lambda.CfnEventSourceMapping(scope, 'BatchEventSource', {
      eventSourceArn: q.eventQueue.attrArn,
      functionName: fn.functionName,
      batchSize: 100,
      maximumBatchingWindowInSeconds: 5,
      functionResponseTypes: ['ReportBatchItemFailures'],
      // Mappings do not see reserved concurrency: this cap keeps them from
      // polling batches the function would throttle.
      scalingConfig: { maximumConcurrency: p.batchMaximumConcurrency },
    });
  }
  if (c.singleOrgPerEvent) {
    const perEvent = rule('PerEventRule', 'Genesys Cloud conversation events to conversation-events, one per invocation.', { id: 'ConversationEvents', arn: fn.functionArn });
    new lambda.CfnPermission(scope, 'PerEventRulePermission', {
      action: 'lambda:InvokeFunction',
      functionName: fn.functionName,
      principal: 'events.amazonaws.com',
      sourceArn: perEvent.attrArn,
    });
  }
  if (c.multiOrgPerEvent) {
    new lambda.CfnPermission(scope, 'OrgRulesPermission', {
      action: 'lambda:InvokeFunction',
      functionName: fn.functionName,
      principal: 'events.amazonaws.com',
      sourceAccount: Aws.ACCOUNT_ID,
      sourceArn: orgRulesArn(),
    });
  }
  return batchRuleArn;
}
