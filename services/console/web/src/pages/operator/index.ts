// The operators' pages: one chunk, loaded when one of them is first opened.
export { ApprovalsPage } from "./ApprovalsPage";
export { DeadLettersPage } from "./DeadLettersPage";
export { QueuesPage } from "./QueuesPage";
export { SchedulesPage } from "./SchedulesPage";
