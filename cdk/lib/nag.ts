import { Validations } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { Conditions } from './conditions';
import { FUNCTION_IDS } from './functions';

/** One acknowledged cdk-nag finding: the construct ids it is on, and why. */
export interface NagAcknowledgement {
  readonly id: string;
  readonly on: readonly string[];
  readonly reason: string;
}

const ROLES = FUNCTION_IDS.map((f) => `${f}Role`);

/**
 * Why each AwsSolutions finding stays: each is a property the SAM template
 * has on purpose (its checkov skips give the same reasons), so the CDK
 * stack keeps it rather than differ from infra/template.yaml.
 */
export function nagAcknowledgements(c: Conditions): NagAcknowledgement[] {
  const list: NagAcknowledgement[] = [
    {
      id: 'AwsSolutions-DDB3', on: ['TokenTable'],
      reason: 'The token table holds only short-lived access tokens that are refetched on demand; restoring an old token would be wrong, so no point-in-time recovery (the template skips checkov CKV_AWS_28 for this).',
    },
    {
      id: 'AwsSolutions-SQS4', on: c.batchDelivery ? ['DeadLetterQueue', 'EventQueue'] : ['DeadLetterQueue'],
      reason: "The queue policy is infra/template.yaml's (only this stack's EventBridge rules may send); every sender and reader (EventBridge, Lambda's on-failure destination, the functions' and va-admin's AWS SDK) uses SQS's HTTPS endpoint, and the queues are encrypted with QueueKey.",
    },
    {
      id: 'AwsSolutions-COG2', on: ['DashboardUserPool'],
      reason: "Viewers are created by an administrator only (no sign-up) with a permanent 12+ character password of four character classes; the page signs in with USER_PASSWORD_AUTH and answers no MFA challenge (infra/README.md, \"The dashboard's sign-in\"), and the dashboard shows read-only aggregates.",
    },
    {
      id: 'AwsSolutions-COG8', on: ['DashboardUserPool'],
      reason: "Cognito's Plus feature plan (threat protection) is billed per monthly active user; the dashboard's pool has no self sign-up, admin-only recovery and a strict password policy, as in infra/template.yaml.",
    },
    {
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]', on: ROLES,
      reason: "SAM's transform attaches AWSLambdaBasicExecutionRole to every function role it makes; these roles are exactly SAM's (logs:CreateLogGroup, CreateLogStream, PutLogEvents for the function's own logs).",
    },
    {
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AWSXrayWriteOnlyAccess]', on: ROLES,
      reason: "SAM's transform attaches AWSXrayWriteOnlyAccess when a function's Tracing is set (the template's Globals, FunctionTracing); X-Ray's write actions name no resource.",
    },
    {
      id: 'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]', on: ['TokenRefresherFunctionRole', 'ConversationEventsFunctionRole', 'EnrichmentSweeperFunctionRole'],
      reason: 'DynamoDB encrypts with GenerateDataKey and GenerateDataKeyWithoutPlaintext; the statement names one key and requires kms:ViaService DynamoDB (and, for the token key, the token table as encryption context).',
    },
  ];
  if (c.multiOrg) {
    list.push(
      {
        id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:<AWS::StackName>/org/*]',
        on: ['TokenRefresherFunctionRole', 'EnrichmentSweeperFunctionRole', 'OperatorPolicy'],
        reason: "MultiOrg: each org's OAuth client secret is <stack>/org/<orgId>, stored when the org is added at run time (va-admin org add); the pattern confines the secrets to this stack's orgs.",
      },
      {
        id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/<AWS::StackName>/*]', on: ['DashboardApiFunctionRole'],
        reason: "MultiOrg: DashboardOrgReaderRole's path is this stack's; a reference to it would be a cycle (it trusts this role), and its trust policy admits only sessions tagged with one org id.",
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]', on: ['OperatorPolicy'],
        reason: 'MultiOrg: events:ListEventBuses and events:ListRules name no resource type (Service Authorization Reference, Amazon EventBridge), so "*" is their only resource.',
      },
      {
        id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:rule/aws.partner/genesys.com/cloud/*/<AWS::StackName>-org-*]',
        on: ['OperatorPolicy'],
        reason: "MultiOrg: each org's rule is made by its own infra/org.yaml stack on that org's partner bus; the pattern confines events:DisableRule (org offboard) to this stack's org rules.",
      },
    );
  }
  if (c.perEventDelivery) {
    list.push({
      id: 'AwsSolutions-SQS3', on: ['DeadLetterQueue'],
      reason: "This queue is itself the dead-letter queue: of the EventBridge rule's targets, of conversation-events' on-failure destination and of its rejected events; va-admin redrive replays it.",
    });
  }
  return list;
}

/** Acknowledges each finding on the construct (a direct child) it is on. */
export function applyNagSuppressions(scope: Construct, c: Conditions): void {
  for (const a of nagAcknowledgements(c)) {
    for (const id of a.on) {
      Validations.of(scope.node.findChild(id)).acknowledge({ id: a.id, reason: a.reason });
    }
  }
}
