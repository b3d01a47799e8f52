# Every output but `deploy` is an environment variable of the server, named
# as in server/core/config.c (scripts/lint-deploy checks it): write them to
# /etc/roastery/env for a VM, or into the overlay's config.yaml for AKS. The
# three secrets are also in Key Vault, where the pods read them.

output "ROASTERY_DATABASE_URL" {
  description = "libpq connection string of the flexible server (Key Vault secret roastery-database-url)."
  value       = local.database_url
  sensitive   = true
}

output "ROASTERY_AUTH" {
  description = "Token issuer: Azure AD."
  value       = "azuread"
}

output "ROASTERY_AAD_TENANT_ID" {
  description = "Tenant whose tokens are accepted (tid)."
  value       = var.tenant_id
}

output "ROASTERY_AAD_AUDIENCE" {
  description = "Accepted audiences: the identifier URI and the client id (v2 tokens carry the client id)."
  value       = "${local.api_identifier_uri},${azuread_application.api.client_id}"
}

output "ROASTERY_AAD_REQUIRED_SCOPE" {
  description = "The delegated scope the app registration exposes."
  value       = one(azuread_application.api.api[0].oauth2_permission_scope[*].value)
}

output "ROASTERY_ARTIFACTS" {
  description = "Artifact store: the artifacts container."
  value       = "azblob://${azurerm_storage_container.artifacts.name}"
}

output "ROASTERY_AZURE_STORAGE_CONNECTION_STRING" {
  description = "Blob endpoint of the storage account, with its key only when server_credential = client_secret (Key Vault secret roastery-storage-connection-string)."
  value       = local.storage_connection_string
  sensitive   = true
}

output "ROASTERY_EXECUTOR" {
  description = "Plans run against Azure ML and Terraform."
  value       = "azure"
}

output "ROASTERY_TF_STATE_RESOURCE_GROUP" {
  description = "Resource group of the storage account that keeps the state of user-requested compute."
  value       = azurerm_resource_group.this.name
}

output "ROASTERY_TF_STATE_STORAGE_ACCOUNT" {
  description = "Storage account of that state."
  value       = azurerm_storage_account.this.name
}

output "ROASTERY_TF_STATE_CONTAINER" {
  description = "Container of that state."
  value       = azurerm_storage_container.tfstate.name
}

output "ROASTERY_AZURE_SUBSCRIPTION_ID" {
  description = "Subscription of the Azure ML workspace."
  value       = var.subscription_id
}

output "ROASTERY_AZURE_RESOURCE_GROUP" {
  description = "Resource group of the Azure ML workspace."
  value       = azurerm_resource_group.this.name
}

output "ROASTERY_AZUREML_WORKSPACE" {
  description = "Azure ML workspace name."
  value       = azurerm_machine_learning_workspace.this.name
}

output "ROASTERY_AZURE_LOCATION" {
  description = "Default region of compute requests."
  value       = azurerm_resource_group.this.location
}

output "ROASTERY_AZURE_TENANT_ID" {
  description = "Tenant of the identity the server calls Azure as (on AKS the webhook's AZURE_TENANT_ID is the same)."
  value       = var.tenant_id
}

output "ROASTERY_AZURE_CLIENT_ID" {
  description = "Client id of the executor's service principal with server_credential = client_secret; null with workload identity (each pod uses its identity's AZURE_CLIENT_ID)."
  value       = var.server_credential == "client_secret" ? azuread_application.executor[0].client_id : null
}

output "ROASTERY_AZURE_CLIENT_SECRET" {
  description = "Client secret of the executor (Key Vault secret roastery-executor-client-secret) with server_credential = client_secret; null with workload identity."
  value       = var.server_credential == "client_secret" ? azuread_application_password.executor[0].value : null
  sensitive   = true
}

output "deploy" {
  description = "Not server settings: the names deploy/k8s overlays and the README's deployment steps need."
  value = {
    resource_group             = azurerm_resource_group.this.name
    aks_name                   = azurerm_kubernetes_cluster.this.name
    acr_login_server           = azurerm_container_registry.this.login_server
    key_vault_name             = azurerm_key_vault.this.name
    namespace                  = var.namespace
    portal_hostname            = var.portal_hostname
    serve_identity_client_id   = azurerm_user_assigned_identity.serve.client_id
    worker_identity_client_id  = azurerm_user_assigned_identity.worker.client_id
    api_client_id              = azuread_application.api.client_id
    postgres_subnet_cidr       = local.subnets.postgres
    private_endpoint_cidr      = local.subnets.private_endpoints
    aml_subnet_id              = azurerm_subnet.aml.id
    storage_account_name       = azurerm_storage_account.this.name
    application_insights_name  = azurerm_application_insights.this.name
    log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id
  }
}
