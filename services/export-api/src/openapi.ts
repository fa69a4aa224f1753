import { z } from 'zod';
import {
  datasetsResponseSchema,
  errorResponseSchema,
  exportEstimateSchema,
  exportRequestSchema,
  exportSchema,
  healthResponseSchema,
  keysResponseSchema,
} from './api/schemas.js';

/**
 * The OpenAPI 3.1 document served at `/openapi.json`, assembled from the same zod schemas the
 * routes validate with (`z.toJSONSchema`, JSON Schema 2020-12 — OpenAPI 3.1's own dialect).
 * Routes added later (candles) describe themselves with `ApiOperation`s passed in `extra`.
 */
export interface ApiOperation {
  method: 'get' | 'post' | 'put' | 'delete';
  path: string;
  summary: string;
  /** `key`: Bearer API key; `public`: none; `token`: the signed token in the path. */
  auth: 'key' | 'public' | 'token';
  admin?: boolean;
  parameters?: {
    name: string;
    in: 'path' | 'query';
    required?: boolean;
    schema: z.ZodType;
    description?: string;
  }[];
  body?: z.ZodType;
  /** Error statuses this operation can answer (default from `auth`, `body` and path parameters). */
  errors?: number[];
  /** Status → schema of the JSON body (`null`: not JSON, e.g. a file stream). */
  responses: Record<number, { description: string; schema: z.ZodType | null; contentType?: string }>;
}

const ERROR_STATUSES: Record<number, string> = {
  400: 'invalid input (the message and `details` say what)',
  401: 'missing, unknown or revoked API key',
  403: 'dataset outside the key scope, admin route, or an invalid or expired download token',
  404: 'unknown route or id',
  413: 'request body too large',
  429: 'rate limited; see `retry-after`',
  503: 'a backing store (lake, catalog, PostgreSQL) cannot be read now; retry later',
};

const str = z.string();

export const CORE_OPERATIONS: ApiOperation[] = [
  {
    method: 'get',
    path: '/health',
    summary: 'Service health',
    auth: 'public',
    responses: { 200: { description: 'health', schema: healthResponseSchema } },
  },
  {
    method: 'get',
    path: '/v1/datasets',
    summary: 'Datasets this key may read, with their schemas',
    auth: 'key',
    responses: { 200: { description: 'datasets', schema: datasetsResponseSchema } },
  },
  {
    method: 'post',
    path: '/v1/exports',
    summary: 'Export a dataset (filtered, projected) to Parquet, CSV or NDJSON',
    auth: 'key',
    body: exportRequestSchema,
    responses: {
      200: { description: 'finished export with its signed URL', schema: exportSchema },
      202: { description: 'export still running: poll GET /v1/exports/{id}', schema: exportSchema },
    },
  },
  {
    method: 'post',
    path: '/v1/exports/estimate',
    summary: 'What an export request would read (files, rows, bytes), from the catalog; nothing is run',
    auth: 'key',
    body: exportRequestSchema,
    responses: { 200: { description: 'the estimate', schema: exportEstimateSchema } },
  },
  {
    method: 'get',
    path: '/v1/exports/{id}',
    summary: 'An export created by this key (another key gets 404)',
    auth: 'key',
    parameters: [{ name: 'id', in: 'path', required: true, schema: str }],
    responses: { 200: { description: 'the export, with fresh signed URLs', schema: exportSchema } },
  },
  {
    method: 'get',
    path: '/v1/downloads/{token}',
    summary: 'Download one export file with a signed, expiring token (filesystem lakes)',
    auth: 'token',
    parameters: [{ name: 'token', in: 'path', required: true, schema: str }],
    responses: {
      200: { description: 'the file', schema: null, contentType: 'application/octet-stream' },
    },
  },
  {
    method: 'get',
    path: '/v1/keys',
    summary: 'API keys (names, scopes, flags; never hashes)',
    auth: 'key',
    admin: true,
    responses: { 200: { description: 'keys', schema: keysResponseSchema } },
  },
];

function defaultErrors(op: ApiOperation): number[] {
  if (op.auth === 'public') return [];
  const hasPathParam = op.parameters?.some((p) => p.in === 'path') ?? false;
  if (op.auth === 'token') return [403, 404];
  return [400, 401, 403, ...(hasPathParam ? [404] : []), ...(op.body ? [413] : []), 429];
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const out = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  delete out.$schema; // the dialect is the document's (jsonSchemaDialect)
  return out;
}

export function buildOpenApiDocument(opts: {
  version: string;
  extra?: readonly ApiOperation[];
}): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of [...CORE_OPERATIONS, ...(opts.extra ?? [])]) {
    const responses: Record<string, unknown> = {};
    for (const [status, r] of Object.entries(op.responses)) {
      responses[status] = {
        description: r.description,
        content: {
          [r.contentType ?? 'application/json']: { schema: r.schema ? jsonSchema(r.schema, 'output') : {} },
        },
      };
    }
    for (const status of op.errors ?? defaultErrors(op)) {
      const description = ERROR_STATUSES[status] ?? 'error';
      responses[status] = {
        description,
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      };
    }
    paths[op.path] ??= {};
    paths[op.path]![op.method] = {
      summary: op.summary,
      ...(op.auth === 'key' ? { security: [{ apiKey: [] }] } : { security: [] }),
      ...(op.parameters
        ? {
            parameters: op.parameters.map((p) => ({
              name: p.name,
              in: p.in,
              required: p.required ?? p.in === 'path',
              ...(p.description ? { description: p.description } : {}),
              schema: jsonSchema(p.schema, 'input'),
            })),
          }
        : {}),
      ...(op.body
        ? {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: jsonSchema(op.body, 'input') } },
            },
          }
        : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'Parquetry export-api',
      version: opts.version,
      description:
        'Exports from the Parquet lake. Every /v1 route needs `Authorization: Bearer <key>` except downloads, ' +
        'whose signed token is the credential. Errors are `{error:{code,message,details?}}`.',
    },
    paths,
    components: {
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'an API key (pq_…)' } },
      schemas: { Error: jsonSchema(errorResponseSchema, 'output') },
    },
    security: [{ apiKey: [] }],
  };
}
