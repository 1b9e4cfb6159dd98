import { Aws, CfnDeletionPolicy } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { Conditions, orgRulesArn, singleOrgRulesArn, viaService } from './conditions';
import { ResolvedProps } from './props';

export interface Keys {
  readonly dataKey: kms.CfnKey;
  readonly tokenKey: kms.CfnKey;
  readonly queueKey: kms.CfnKey;
}

const ACCOUNT_ROOT = `arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:root`;

/**
 * Three customer managed keys, one per kind of data (analytics table, token
 * table, queues), so a grant on one never reaches another. Retained with
 * the stack: a scheduled deletion would make the tables' backups unreadable.
 * L1: the L2 Key writes its own default key policy.
 */
export function createKeys(scope: Construct, p: ResolvedProps, c: Conditions): Keys {
  const accountAdministers = (description: string, id: string) => retained(new kms.CfnKey(scope, id, {
    description,
    enableKeyRotation: true,
    keyPolicy: {
      Version: '2012-10-17',
      Statement: [{ Sid: 'AccountAdministers', Effect: 'Allow', Principal: { AWS: ACCOUNT_ROOT }, Action: 'kms:*', Resource: '*' }],
    },
  }));
  const dataKey = accountAdministers('Encrypts the analytics table.', 'DataKey');
  const tokenKey = accountAdministers('Encrypts the token table (live Genesys Cloud access tokens).', 'TokenKey');

  // The account administers the queue key but uses it only through SQS for
  // this stack's two queues; EventBridge only for this stack's rules.
  const queueArn = (suffix: string) => `arn:${Aws.PARTITION}:sqs:${Aws.REGION}:${Aws.ACCOUNT_ID}:${Aws.STACK_NAME}-${suffix}`;
  const queueKey = retained(new kms.CfnKey(scope, 'QueueKey', {
    description: 'Encrypts the event and dead-letter queues.',
    enableKeyRotation: true,
    keyPolicy: {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'AccountAdministersOnly',
          Effect: 'Allow',
          Principal: { AWS: ACCOUNT_ROOT },
          Action: [
            'kms:Create*', 'kms:Describe*', 'kms:Enable*', 'kms:List*', 'kms:Put*', 'kms:Update*', 'kms:Revoke*',
            'kms:Disable*', 'kms:Get*', 'kms:Delete*', 'kms:TagResource', 'kms:UntagResource',
            'kms:ScheduleKeyDeletion', 'kms:CancelKeyDeletion', 'kms:RotateKeyOnDemand',
          ],
          Resource: '*',
        },
        {
          Sid: 'GenesysRulesSendToQueues',
          Effect: 'Allow',
          Principal: { Service: 'events.amazonaws.com' },
          Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
          Resource: '*',
          Condition: {
            StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
            ArnLike: { 'aws:SourceArn': c.multiOrg ? orgRulesArn() : singleOrgRulesArn(p) },
          },
        },
        {
          Sid: 'RolesOfThisAccountUseItForThisStacksQueuesOnly',
          Effect: 'Allow',
          Principal: { AWS: ACCOUNT_ROOT },
          Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
          Resource: '*',
          Condition: {
            StringEquals: { 'kms:ViaService': viaService('sqs') },
            'ForAnyValue:StringEquals': { 'kms:EncryptionContext:aws:sqs:arn': [queueArn('dead-letters'), queueArn('events')] },
          },
        },
      ],
    },
  }));
  return { dataKey, tokenKey, queueKey };
}

/** DeletionPolicy and UpdateReplacePolicy Retain, as the template's. */
export function retained<T extends { cfnOptions: { deletionPolicy?: CfnDeletionPolicy; updateReplacePolicy?: CfnDeletionPolicy } }>(r: T): T {
  r.cfnOptions.deletionPolicy = CfnDeletionPolicy.RETAIN;
  r.cfnOptions.updateReplacePolicy = CfnDeletionPolicy.RETAIN;
  return r;
}
