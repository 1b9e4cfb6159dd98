import { Aws } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { ResolvedProps } from './props';

export interface SignIn {
  readonly userPool: cognito.CfnUserPool;
  readonly client: cognito.CfnUserPoolClient;
  /** The JWT issuer: the pool's URL. */
  readonly issuer: string;
}

/** The dashboard's viewers: an administrator creates each one (no sign-up). */
export function createSignIn(scope: Construct): SignIn {
  const userPool = new cognito.CfnUserPool(scope, 'DashboardUserPool', {
    userPoolName: `${Aws.STACK_NAME}-dashboard`,
    adminCreateUserConfig: { allowAdminCreateUserOnly: true },
    usernameConfiguration: { caseSensitive: false },
    policies: {
      passwordPolicy: {
        minimumLength: 12, requireLowercase: true, requireUppercase: true, requireNumbers: true, requireSymbols: true,
        temporaryPasswordValidityDays: 3,
      },
    },
    accountRecoverySetting: { recoveryMechanisms: [{ name: 'admin_only', priority: 1 }] },
  });
  // The page signs in with this client: no secret (it runs in a browser).
  const client = new cognito.CfnUserPoolClient(scope, 'DashboardUserPoolClient', {
    userPoolId: userPool.ref,
    clientName: 'dashboard',
    generateSecret: false,
    explicitAuthFlows: ['ALLOW_USER_PASSWORD_AUTH', 'ALLOW_USER_SRP_AUTH', 'ALLOW_REFRESH_TOKEN_AUTH'],
    preventUserExistenceErrors: 'ENABLED',
    accessTokenValidity: 60,
    idTokenValidity: 60,
    refreshTokenValidity: 12,
    tokenValidityUnits: { accessToken: 'minutes', idToken: 'minutes', refreshToken: 'hours' },
  });
  return { userPool, client, issuer: `https://cognito-idp.${Aws.REGION}.amazonaws.com/${userPool.ref}` };
}

/** The routes: SAM's HttpApi events of DashboardApiFunction (event name, method, path, authorized). */
const ROUTES: [string, 'GET' | 'POST', string, boolean][] = [
  ['Page', 'GET', '/', false],
  ['SignIn', 'GET', '/api/sign-in', false],
  ['Data', 'GET', '/api/dashboard', true],
  ['LiveData', 'POST', '/api/dashboard', true],
  ['Orgs', 'GET', '/api/orgs', true],
];

const ACCESS_LOG_FORMAT = '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","time":"$context.requestTime","route":"$context.routeKey","status":"$context.status","authorizerError":"$context.authorizer.error"}';

/**
 * The HTTP API as SAM's transform writes `DashboardHttpApi`: one
 * AWS::ApiGatewayV2::Api whose OpenAPI body holds the routes, their Lambda
 * integrations and the Cognito JWT authorizer; its `$default` stage with
 * access logs and the throttle; one invoke permission per route. The page
 * and /api/sign-in are public (no data, no secret); the data routes name
 * the authorizer.
 */
export function createHttpApi(scope: Construct, p: ResolvedProps, signIn: SignIn, fn: lambda.Function): apigwv2.CfnApi {
  const integration = {
    httpMethod: 'POST',
    type: 'aws_proxy',
    uri: `arn:${Aws.PARTITION}:apigateway:${Aws.REGION}:lambda:path/2015-03-31/functions/${fn.functionArn}/invocations`,
    payloadFormatVersion: '2.0',
  };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [, method, path, authorized] of ROUTES) {
    paths[path] ??= {};
    paths[path][method.toLowerCase()] = {
      'x-amazon-apigateway-integration': integration,
      ...(authorized ? { security: [{ CognitoViewers: [] }] } : {}),
      responses: {},
    };
  }
  const api = new apigwv2.CfnApi(scope, 'DashboardHttpApi', {
    body: {
      info: { version: '1.0', description: 'The dashboard, behind a Cognito sign-in.', title: Aws.STACK_NAME },
      paths,
      openapi: '3.0.1',
      components: {
        securitySchemes: {
          CognitoViewers: {
            type: 'oauth2',
            'x-amazon-apigateway-authorizer': {
              jwtConfiguration: { issuer: signIn.issuer, audience: [signIn.client.ref] },
              identitySource: '$request.header.Authorization',
              type: 'jwt',
            },
          },
        },
      },
    },
  });

  const accessLogs = new logs.CfnLogGroup(scope, 'DashboardAccessLogs', { retentionInDays: p.logRetentionDays });
  new apigwv2.CfnStage(scope, 'DashboardHttpApiApiGatewayDefaultStage', {
    apiId: api.ref,
    stageName: '$default',
    autoDeploy: true,
    accessLogSettings: { destinationArn: accessLogs.attrArn, format: ACCESS_LOG_FORMAT },
    // From the budget (infra/README.md, "The dashboard's request budget").
    defaultRouteSettings: { throttlingBurstLimit: p.dashboardBurstRequests, throttlingRateLimit: p.dashboardRequestsPerSecond },
  });

  for (const [event, method, path] of ROUTES) {
    new lambda.CfnPermission(scope, `DashboardApiFunction${event}Permission`, {
      action: 'lambda:InvokeFunction',
      functionName: fn.functionName,
      principal: 'apigateway.amazonaws.com',
      sourceArn: `arn:${Aws.PARTITION}:execute-api:${Aws.REGION}:${Aws.ACCOUNT_ID}:${api.ref}/*/${method}${path}`,
    });
  }
  return api;
}
