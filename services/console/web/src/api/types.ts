/** The shapes the services answer with (the parts the console reads). */
export interface Panel {
  id: string;
  slug: string;
  title: string;
  description: string;
  category: string;
  tags: string[];
  allowed_roles: string[];
  allowed_groups: string[];
  operation_template: string;
}

/** A panel's field as panel-svc answers it. */
export interface PanelField {
  name: string;
  label: string;
  help_text: string;
  field_type: string;
  is_required: boolean;
  default: unknown;
  options: { value: string; label: string }[] | null;
  data_source: string | null;
  depends_on: string[];
  [constraint: string]: unknown;
}

export interface PanelDetail extends Panel {
  fields: PanelField[];
}

export interface DataSourceSummary {
  id: string;
  slug: string;
  name: string;
  source_type: string;
  endpoint_url: string | null;
}

export interface FieldUi {
  widget: string;
  help: string;
  depends_on: string[];
  options_url: string | null;
  options: { value: string; label: string }[] | null;
}

export interface PanelSchema {
  schema: Record<string, unknown> & { properties: Record<string, Record<string, unknown>> };
  ui: { order: string[]; fields: Record<string, FieldUi> };
}

export interface Option {
  value: string;
  label: string;
}

export interface Options {
  options: Option[];
  stale?: boolean;
  cached?: boolean;
}

export interface Submission {
  id: string;
  panel_id: string;
  status: string;
  execution_id: string | null;
  attempt: number;
  data: Record<string, unknown>;
  submitted_by: string;
  created_at: string;
  error: string | null;
}

export interface Execution {
  id: string;
  template_slug: string;
  submission_id: string | null;
  retry_of: string | null;
  attempt: number;
  submitted_by: string;
  argv: string[] | null;
  http_request: Record<string, unknown> | null;
  status: string;
  exit_code: number | null;
  error: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration_seconds: number | null;
  trace_id: string | null;
}

export interface LogLine {
  seq: number;
  stream: string;
  level?: string;
  message: string;
  timestamp: string;
}

export const TERMINAL = new Set(["succeeded", "failed", "timed_out", "cancelled", "lost", "rejected", "expired"]);
export const STATUSES = ["awaiting_approval", "pending", "running", ...TERMINAL];

export interface QueueStats {
  name: string;
  visible: number;
  in_flight: number;
  delayed: number;
  dead_letters: { name: string; depth: number; oldest_age_seconds: number | null };
}

export interface DeadLetter {
  message_id: string;
  event_id: string | null;
  type: string | null;
  tenant: string | null;
  trace_id: string | null;
  receive_count: number;
  failed_at: string;
  reason: string | null;
  data: unknown;
  body: string | null;
}

export interface QueueAction {
  id: string;
  action: "replay" | "delete";
  status: "dry_run" | "running" | "completed" | "failed";
  dry_run: boolean;
  matched: number;
  done: number;
  message_ids: string[];
  error: string | null;
}

export interface PendingApproval {
  execution_id: string;
  template_slug: string;
  submitted_by: string;
  requested_at: string;
  expires_at: string | null;
  approvals_required: number;
  approvals: { approver: string; decision: string }[];
  argv: string[] | null;
  http_request: Record<string, unknown> | null;
  parameters: Record<string, unknown>;
}

export interface Schedule {
  id: string;
  name: string;
  template_slug: string;
  cron: string | null;
  interval_seconds: number | null;
  timezone: string;
  is_paused: boolean;
  paused_reason: string | null;
  next_slot_at: string | null;
  owner_subject: string;
}

export interface SchedulePreview {
  timezone: string;
  fires: { slot: string; at: string; local: string }[];
}

export interface TemplateParameter {
  name: string;
  type: string;
  required: boolean;
  [constraint: string]: unknown;
}

export interface ApprovalPolicy {
  required: number;
  approver_roles: string[];
  approver_groups: string[];
  allow_self_approval: boolean;
  expires_after_seconds: number;
}

export interface Template {
  id: string;
  slug: string;
  name: string;
  description: string;
  operation_type: string;
  command_template: string | null;
  argv: string[] | null;
  parameters: TemplateParameter[];
  timeout_seconds: number;
  max_concurrency: number | null;
  allowed_roles: string[];
  allowed_groups: string[];
  approval: ApprovalPolicy | null;
  version: number;
}

export interface TemplatePreview {
  allowed: boolean;
  argv: string[] | null;
  http: Record<string, unknown> | null;
  refusals: { field?: string | null; code?: string | null; message?: string | null }[];
  template_version: number;
}
