// The admins' pages: one chunk, loaded when one of them is first opened.
export { ApiKeysPage } from "./ApiKeysPage";
export { AuditPage } from "./AuditPage";
export { DataSourcePage, DataSourcesPage } from "./DataSourcesPage";
export { EditPanelPage } from "./EditPanelPage";
export { NewPanelPage } from "./NewPanelPage";
export { SecretsPage } from "./SecretsPage";
export { TemplatePage } from "./TemplatePage";
export { TemplatesPage } from "./TemplatesPage";
export { WebhooksPage } from "./WebhooksPage";
