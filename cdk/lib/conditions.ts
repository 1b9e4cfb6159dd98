import { Aws } from 'aws-cdk-lib';
import { ResolvedProps } from './props';

/**
 * The template's `Conditions`, resolved at synth time from the props: the
 * construct creates a conditional resource or statement only when its
 * condition holds, instead of emitting CfnConditions.
 */
export interface Conditions {
  readonly multiOrg: boolean;
  readonly singleOrg: boolean;
  readonly batchDelivery: boolean;
  readonly perEventDelivery: boolean;
  readonly singleOrgBatch: boolean;
  readonly singleOrgPerEvent: boolean;
  readonly multiOrgPerEvent: boolean;
  readonly hasAlarmTopic: boolean;
  readonly hasSecretKey: boolean;
}

export function conditions(p: ResolvedProps): Conditions {
  const multiOrg = p.tenancy === 'MultiOrg';
  const batchDelivery = p.deliveryMode === 'Batch';
  return {
    multiOrg,
    singleOrg: !multiOrg,
    batchDelivery,
    perEventDelivery: !batchDelivery,
    singleOrgBatch: !multiOrg && batchDelivery,
    singleOrgPerEvent: !multiOrg && !batchDelivery,
    multiOrgPerEvent: multiOrg && !batchDelivery,
    hasAlarmTopic: p.alarmTopicArn !== '',
    hasSecretKey: p.genesysSecretKeyArn !== '',
  };
}

/** Every org stack's rule (infra/org.yaml): `<stack>-*` on any Genesys partner bus. */
export function orgRulesArn(): string {
  return `arn:${Aws.PARTITION}:events:${Aws.REGION}:${Aws.ACCOUNT_ID}:rule/aws.partner/genesys.com/cloud/*/${Aws.STACK_NAME}-*`;
}

/** This stack's rules on the single org's bus. */
export function singleOrgRulesArn(p: ResolvedProps): string {
  return `arn:${Aws.PARTITION}:events:${Aws.REGION}:${Aws.ACCOUNT_ID}:rule/${p.genesysEventSourceName}/${Aws.STACK_NAME}-*`;
}

/** The OAuth secrets this stack's functions read: the one secret, or `<stack>/org/*`. */
export function oauthSecretArn(p: ResolvedProps, c: Conditions): string {
  return c.multiOrg
    ? `arn:${Aws.PARTITION}:secretsmanager:${Aws.REGION}:${Aws.ACCOUNT_ID}:secret:${Aws.STACK_NAME}/org/*`
    : p.genesysSecretArn;
}

/** `kms:ViaService` of a service in this region. */
export function viaService(service: 'dynamodb' | 'sqs' | 'secretsmanager'): string {
  return `${service}.${Aws.REGION}.amazonaws.com`;
}

/** The tenant item's fields a reader may see (dynamodb:Attributes). */
export const TENANT_FIELDS = ['pk', 'org_id', 'region', 'secret_arn', 'pool_size', 'enabled', 'display_name', 'base_url', 'offboarded'];
