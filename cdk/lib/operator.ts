import { Aws } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { PolicyRefs, Statement, document } from './policies';
import { viaService } from './conditions';

const leadingKeys = (keys: string[]) => ({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': keys } });
const when = (cond: boolean, s: Statement): Statement | undefined => (cond ? s : undefined);

/**
 * What `va-admin` needs, for the operator's own role or user to attach:
 * the dead letters' redrive (which counts as conversation-events counts)
 * and `migrate`; with many orgs also the registry, the orgs' secrets, their
 * rules and items (offboard) and the token items `org add` checks with.
 */
export function createOperatorPolicy(scope: Construct, r: PolicyRefs): iam.CfnManagedPolicy {
  const { c, keys, tables, queues } = r;
  const analytics = tables.analyticsTable.attrArn;
  const dlq = queues.deadLetterQueue.attrArn;
  const tenant = tables.tenantTable?.attrArn;
  const orgSecrets = `arn:${Aws.PARTITION}:secretsmanager:${Aws.REGION}:${Aws.ACCOUNT_ID}:secret:${Aws.STACK_NAME}/org/*`;
  return new iam.CfnManagedPolicy(scope, 'OperatorPolicy', {
    description: `va-admin (redrive; with many orgs, org add/onboard/list/disable/offboard/remove) for the stack ${Aws.STACK_NAME}.`,
    policyDocument: document([
      { Sid: 'RedriveReadsDeadLetters', Effect: 'Allow', Action: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'], Resource: dlq },
      {
        Sid: 'RedriveDecryptsDeadLetters', Effect: 'Allow', Action: 'kms:Decrypt', Resource: keys.queueKey.attrArn,
        Condition: { StringEquals: { 'kms:ViaService': viaService('sqs'), 'kms:EncryptionContext:aws:sqs:arn': dlq } },
      },
      {
        Sid: 'RedriveCounts', Effect: 'Allow', Action: ['dynamodb:PutItem', 'dynamodb:UpdateItem'], Resource: analytics,
        Condition: leadingKeys(['agg#*', 'event#*', 'conv#*', 'pending#*', 'names#*', 'org#*#agg#*', 'org#*#event#*', 'org#*#conv#*', 'org#*#pending#*', 'org#*#names#*']),
      },
      { Sid: 'RedriveMarksLateHours', Effect: 'Allow', Action: 'dynamodb:UpdateItem', Resource: analytics, Condition: leadingKeys(['dirty#*', 'org#*#dirty#*']) },
      { Sid: 'LayoutReadRecord', Effect: 'Allow', Action: ['dynamodb:GetItem', 'dynamodb:PutItem'], Resource: analytics, Condition: leadingKeys(['layout']) },
      { Sid: 'RedriveReadsConversationState', Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: analytics, Condition: leadingKeys(['conv#*', 'org#*#conv#*']) },
      { Sid: 'MigrateFindsLayout1', Effect: 'Allow', Action: 'dynamodb:Scan', Resource: analytics },
      { Sid: 'MigrateDeletesLayout1', Effect: 'Allow', Action: 'dynamodb:DeleteItem', Resource: analytics, Condition: leadingKeys(['agg#org', 'agg#flow#*']) },
      {
        Sid: 'DataTablesKey', Effect: 'Allow', Action: 'kms:Decrypt', Resource: keys.dataKey.attrArn,
        Condition: { StringEquals: { 'kms:ViaService': viaService('dynamodb') } },
      },
      when(c.multiOrg, { Sid: 'RegistryList', Effect: 'Allow', Action: 'dynamodb:Scan', Resource: tenant }),
      // ListEventBuses names no resource (Service Authorization Reference).
      when(c.multiOrg, { Sid: 'EventBusCount', Effect: 'Allow', Action: 'events:ListEventBuses', Resource: '*' }),
      when(c.multiOrg, {
        Sid: 'RegistryItems', Effect: 'Allow', Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'], Resource: tenant,
        Condition: leadingKeys(['tenant#*']),
      }),
      when(c.multiOrg, { Sid: 'OrgSecrets', Effect: 'Allow', Action: ['secretsmanager:CreateSecret', 'secretsmanager:PutSecretValue', 'secretsmanager:GetSecretValue'], Resource: orgSecrets }),
      when(c.multiOrg, { Sid: 'OffboardListsRules', Effect: 'Allow', Action: 'events:ListRules', Resource: '*' }),
      when(c.multiOrg, {
        Sid: 'OffboardDisablesOrgRules', Effect: 'Allow', Action: 'events:DisableRule',
        Resource: `arn:${Aws.PARTITION}:events:${Aws.REGION}:${Aws.ACCOUNT_ID}:rule/aws.partner/genesys.com/cloud/*/${Aws.STACK_NAME}-org-*`,
      }),
      when(c.multiOrg, { Sid: 'OffboardFindsOrgItems', Effect: 'Allow', Action: 'dynamodb:Query', Resource: `${analytics}/index/OrgItems` }),
      when(c.multiOrg, { Sid: 'OffboardPurgesOrgItems', Effect: 'Allow', Action: ['dynamodb:Query', 'dynamodb:BatchWriteItem'], Resource: analytics, Condition: leadingKeys(['org#*']) }),
      when(c.multiOrg, {
        Sid: 'OrgCheckTokens', Effect: 'Allow', Action: ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'], Resource: tables.tokenTable.attrArn,
        Condition: leadingKeys(['token#*']),
      }),
      when(c.multiOrg, {
        Sid: 'OrgCheckTokensKey', Effect: 'Allow', Action: 'kms:Decrypt', Resource: keys.tokenKey.attrArn,
        Condition: { StringEquals: { 'kms:ViaService': viaService('dynamodb'), 'kms:EncryptionContext:aws:dynamodb:tableName': tables.tokenTable.ref } },
      }),
      when(c.multiOrg && c.hasSecretKey, {
        Sid: 'OrgSecretsKey', Effect: 'Allow', Action: ['kms:GenerateDataKey', 'kms:Decrypt'], Resource: r.p.genesysSecretKeyArn,
        Condition: { StringEquals: { 'kms:ViaService': viaService('secretsmanager') } },
      }),
    ]),
  });
}

/**
 * Tenant isolation in IAM (MultiOrg): a session of this role, tagged
 * `org=<orgId>` by the dashboard, may query that org's buckets and nothing
 * else. Its path is the stack's, which the dashboard's policy names (a
 * reference would be a cycle: this role trusts the dashboard's role).
 */
export function createOrgReaderRole(scope: Construct, r: PolicyRefs, dashboardRole: iam.CfnRole): iam.CfnRole {
  const org = '${aws:PrincipalTag/org}';
  return new iam.CfnRole(scope, 'DashboardOrgReaderRole', {
    path: `/${Aws.STACK_NAME}/`,
    description: 'Reads one org\'s dashboard buckets; the org is the session tag `org`.',
    maxSessionDuration: 3600,
    assumeRolePolicyDocument: {
      Version: '2012-10-17',
      Statement: [{
        Effect: 'Allow',
        Principal: { AWS: dashboardRole.attrArn },
        Action: ['sts:AssumeRole', 'sts:TagSession'],
        Condition: {
          StringLike: { 'aws:RequestTag/org': '????????-????-????-????-????????????' },
          'ForAllValues:StringEquals': { 'aws:TagKeys': ['org'] },
        },
      }],
    },
    policies: [{
      policyName: 'OneOrgsBuckets',
      policyDocument: document([
        {
          Sid: 'TheTaggedOrgsBuckets', Effect: 'Allow', Action: 'dynamodb:Query', Resource: r.tables.analyticsTable.attrArn,
          Condition: leadingKeys([`org#${org}#agg#*`, `org#${org}#flows`, `org#${org}#hours`, `org#${org}#dirty#*`]),
        },
        {
          Sid: 'AnalyticsTableKey', Effect: 'Allow', Action: ['kms:Decrypt', 'kms:DescribeKey'], Resource: r.keys.dataKey.attrArn,
          Condition: { StringEquals: { 'kms:ViaService': viaService('dynamodb'), 'kms:EncryptionContext:aws:dynamodb:tableName': r.tables.analyticsTable.ref } },
        },
      ]),
    }],
  });
}
