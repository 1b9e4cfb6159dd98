import { Aws } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { Conditions, orgRulesArn, singleOrgRulesArn } from './conditions';
import { Keys, retained } from './keys';
import { ResolvedProps } from './props';

export interface Queues {
  readonly deadLetterQueue: sqs.CfnQueue;
  /** DeliveryMode=Batch only. */
  readonly eventQueue?: sqs.CfnQueue;
}

/**
 * The dead-letter queue (every event that could not be counted, in three
 * shapes; retained) and, in Batch mode, the event queue the rule fills.
 * L1: the queue key is a CfnKey, and the names are the stack's.
 */
export function createQueues(scope: Construct, keys: Keys, c: Conditions): Queues {
  const deadLetterQueue = retained(new sqs.CfnQueue(scope, 'DeadLetterQueue', {
    queueName: `${Aws.STACK_NAME}-dead-letters`,
    messageRetentionPeriod: 1209600,
    kmsMasterKeyId: keys.queueKey.ref,
  }));
  const eventQueue = c.batchDelivery
    ? new sqs.CfnQueue(scope, 'EventQueue', {
      queueName: `${Aws.STACK_NAME}-events`,
      // Six times the function's timeout, as Lambda's SQS guide advises.
      visibilityTimeout: 180,
      messageRetentionPeriod: 345600,
      kmsMasterKeyId: keys.queueKey.ref,
      redrivePolicy: { deadLetterTargetArn: deadLetterQueue.attrArn, maxReceiveCount: 5 },
    })
    : undefined;
  return { deadLetterQueue, eventQueue };
}

/**
 * The queues' resource policies: EventBridge may send to them only from this
 * stack's rules. `batchRuleArn`: the single org's batch rule (SingleOrg+Batch).
 */
export function createQueuePolicies(scope: Construct, p: ResolvedProps, c: Conditions, q: Queues, batchRuleArn?: string): void {
  if (q.eventQueue) {
    new sqs.CfnQueuePolicy(scope, 'EventQueuePolicy', {
      queues: [q.eventQueue.ref],
      policyDocument: {
        Version: '2012-10-17',
        Statement: [{
          Sid: 'GenesysRuleSends',
          Effect: 'Allow',
          Principal: { Service: 'events.amazonaws.com' },
          Action: 'sqs:SendMessage',
          Resource: q.eventQueue.attrArn,
          Condition: { ArnLike: { 'aws:SourceArn': c.multiOrg ? orgRulesArn() : batchRuleArn } },
        }],
      },
    });
  }
  new sqs.CfnQueuePolicy(scope, 'DeadLetterQueuePolicy', {
    queues: [q.deadLetterQueue.ref],
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{
        Sid: 'EventBridgeRuleDeadLetters',
        Effect: 'Allow',
        Principal: { Service: 'events.amazonaws.com' },
        Action: 'sqs:SendMessage',
        Resource: q.deadLetterQueue.attrArn,
        Condition: { ArnLike: { 'aws:SourceArn': c.multiOrg ? orgRulesArn() : singleOrgRulesArn(p) } },
      }],
    },
  });
}
