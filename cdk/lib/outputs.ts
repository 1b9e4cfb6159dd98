import { Aws, CfnOutput } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { Construct } from 'constructs';
import { Conditions } from './conditions';
import { SignIn } from './dashboard';
import { Functions } from './functions';
import { Queues } from './queues';
import { Tables } from './tables';
import * as iam from 'aws-cdk-lib/aws-iam';

/** The release (CHANGELOG.md); a test holds it equal to the Cargo workspace's version. */
export const VERSION = '1.0.0';

/**
 * The template's Outputs, with its output keys as logical ids (the deploy
 * guide's `describe-stacks` queries and infra/org.yaml's imports name
 * them), so one instance of the construct per stack.
 */
export function createOutputs(scope: Construct, c: Conditions, t: Tables, q: Queues, fns: Functions, api: apigwv2.CfnApi, signIn: SignIn, operator: iam.CfnManagedPolicy): void {
  const out = (id: string, value: string, description?: string, exported = false) => {
    const o = new CfnOutput(scope, id, { value, description, exportName: exported ? `${Aws.STACK_NAME}-${id}` : undefined });
    o.overrideLogicalId(id);
  };
  out('Version', VERSION, 'The release of this deployment (CHANGELOG.md).');
  out('TokenRefresherFunctionName', fns.TokenRefresherFunction.functionName, 'For `aws lambda invoke` (infra/README.md, "Check it works").');
  out('ConversationEventsFunctionName', fns.ConversationEventsFunction.functionName);
  out('EnrichmentSweeperFunctionName', fns.EnrichmentSweeperFunction.functionName);
  out('DashboardApiFunctionName', fns.DashboardApiFunction.functionName);
  out('TokenTableName', t.tokenTable.ref);
  out('OperatorPolicyArn', operator.ref, 'Attach to whoever runs va-admin (redrive; org commands with many orgs).');
  if (t.tenantTable) out('TenantTableName', t.tenantTable.ref, 'The tenant registry (`va-admin org --table`).');
  out('ConversationEventsFunctionArn', fns.ConversationEventsFunction.functionArn, undefined, true);
  out('DeadLetterQueueArn', q.deadLetterQueue.attrArn, undefined, true);
  if (c.batchDelivery && q.eventQueue) out('EventQueueArn', q.eventQueue.attrArn, undefined, true);
  // infra/org.yaml's rule target in either delivery mode.
  out('EventTargetArn', q.eventQueue ? q.eventQueue.attrArn : fns.ConversationEventsFunction.functionArn, undefined, true);
  out('AnalyticsTableName', t.analyticsTable.ref);
  out('DashboardUrl', `https://${api.ref}.execute-api.${Aws.REGION}.${Aws.URL_SUFFIX}/`, 'The dashboard; sign in with a user of DashboardUserPoolId.');
  out('DashboardUserPoolId', signIn.userPool.ref, 'Add viewers with `aws cognito-idp admin-create-user` (see infra/README.md).');
  out('DeadLetterQueueUrl', q.deadLetterQueue.ref);
}
