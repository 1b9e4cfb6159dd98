import { CfnResource } from 'aws-cdk-lib';
import { Construct } from 'constructs';

/** A checkov check skipped on a resource, with why (read by checkov from the resource's Metadata). */
interface Skip {
  readonly id: string;
  readonly comment: string;
}

const NO_SECRETS_IN_ENV: Skip = { id: 'CKV_AWS_173', comment: 'Environment holds only names and numbers, no secrets.' };
const RESERVED_IS_A_PARAMETER: Skip = {
  id: 'CKV_AWS_115',
  comment: 'Reserved concurrency is a parameter, 0 (none) by default so the stack deploys in any account (infra/README.md, "Before you deploy - concurrency").',
};

/**
 * The skips infra/template.yaml declares, by logical id, word for word:
 * cdk/parity compares each resource's `checkov` metadata with the SAM
 * template's, so a skip changed on one side only fails CI.
 */
const SKIPS: Record<string, Skip[]> = {
  TokenTable: [{ id: 'CKV_AWS_28', comment: 'Holds only short-lived tokens that are refetched on demand; restoring an old token would be wrong.' }],
  TokenRefresherFunction: [
    { id: 'CKV_AWS_117', comment: 'Calls Genesys Cloud over the internet; no VPC resources to reach.' },
    { id: 'CKV_AWS_116', comment: 'Scheduled; a failed tick is retried by the next one and alarmed on.' },
    NO_SECRETS_IN_ENV,
    RESERVED_IS_A_PARAMETER,
  ],
  ConversationEventsFunction: [
    { id: 'CKV_AWS_116', comment: 'Failed invocations go to the on-failure destination (the dead-letter queue), one path per failure, not also a function DLQ.' },
    { id: 'CKV_AWS_117', comment: 'Reaches only DynamoDB; no VPC resources to reach.' },
    NO_SECRETS_IN_ENV,
    RESERVED_IS_A_PARAMETER,
  ],
  EnrichmentSweeperFunction: [
    { id: 'CKV_AWS_117', comment: 'Calls Genesys Cloud over the internet; no VPC resources to reach.' },
    { id: 'CKV_AWS_116', comment: 'Scheduled; what a sweep leaves pending the next one picks up, and failures are alarmed on.' },
    NO_SECRETS_IN_ENV,
    RESERVED_IS_A_PARAMETER,
  ],
  DashboardApiFunction: [
    { id: 'CKV_AWS_117', comment: 'Reads DynamoDB only; no VPC resources to reach.' },
    { id: 'CKV_AWS_116', comment: 'Synchronous (HTTP API); the caller sees the error.' },
    NO_SECRETS_IN_ENV,
    RESERVED_IS_A_PARAMETER,
  ],
  DashboardAccessLogs: [{ id: 'CKV_AWS_158', comment: 'Access logs carry request ids, routes and statuses only; default encryption suffices.' }],
  TokenRefresherLogs: [{ id: 'CKV_AWS_158', comment: 'Logs carry no tokens or secrets (tested); CloudWatch\'s default encryption suffices.' }],
  ConversationEventsLogs: [{ id: 'CKV_AWS_158', comment: 'Logs carry no tokens, secrets or event field values; default encryption suffices.' }],
  EnrichmentSweeperLogs: [{ id: 'CKV_AWS_158', comment: 'Logs carry no tokens or secrets; default encryption suffices.' }],
  DashboardApiLogs: [{ id: 'CKV_AWS_158', comment: 'Logs carry no tokens or secrets; default encryption suffices.' }],
};

/** Puts each resource's skips in its Metadata, as the SAM template does. */
export function applyCheckovSkips(scope: Construct): void {
  for (const [id, skip] of Object.entries(SKIPS)) {
    const child = scope.node.tryFindChild(id);
    const resource = child instanceof CfnResource ? child : child?.node.defaultChild;
    if (!(resource instanceof CfnResource)) {
      throw new Error(`checkov skips for ${id}: no such resource in the construct`);
    }
    resource.addMetadata('checkov', { skip });
  }
}
