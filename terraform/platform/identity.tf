# Workload identities of the pods: one per service account, so the API
# cannot do what only workers need. Each trusts exactly one service account
# of the cluster's OIDC issuer.
resource "azurerm_user_assigned_identity" "serve" {
  name                = "id-${local.name}-serve"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_user_assigned_identity" "worker" {
  name                = "id-${local.name}-worker"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_federated_identity_credential" "serve" {
  name                = "roastery-api"
  resource_group_name = azurerm_resource_group.this.name
  parent_id           = azurerm_user_assigned_identity.serve.id
  audience            = ["api://AzureADTokenExchange"]
  issuer              = azurerm_kubernetes_cluster.this.oidc_issuer_url
  subject             = local.serve_subject
}

resource "azurerm_federated_identity_credential" "worker" {
  name                = "roastery-worker"
  resource_group_name = azurerm_resource_group.this.name
  parent_id           = azurerm_user_assigned_identity.worker.id
  audience            = ["api://AzureADTokenExchange"]
  issuer              = azurerm_kubernetes_cluster.this.oidc_issuer_url
  subject             = local.worker_subject
}

# Least privilege, scoped as tightly as each role allows.
locals {
  role_assignments = {
    # API: reads and writes artifacts (uploads, downloads), reads its secrets.
    serve_artifacts = { principal = azurerm_user_assigned_identity.serve.principal_id, scope = azurerm_storage_container.artifacts.id, role = "Storage Blob Data Contributor" }
    serve_secrets   = { principal = azurerm_user_assigned_identity.serve.principal_id, scope = azurerm_key_vault.this.id, role = "Key Vault Secrets User" }
    # Workers: artifacts, the compute state, their secrets, and through
    # terraform the workspace's compute (clusters, instances) and the AKS
    # clusters of inference compute in the resource group.
    worker_artifacts = { principal = azurerm_user_assigned_identity.worker.principal_id, scope = azurerm_storage_container.artifacts.id, role = "Storage Blob Data Contributor" }
    worker_tfstate   = { principal = azurerm_user_assigned_identity.worker.principal_id, scope = azurerm_storage_container.tfstate.id, role = "Storage Blob Data Contributor" }
    worker_secrets   = { principal = azurerm_user_assigned_identity.worker.principal_id, scope = azurerm_key_vault.this.id, role = "Key Vault Secrets User" }
    worker_compute   = { principal = azurerm_user_assigned_identity.worker.principal_id, scope = azurerm_machine_learning_workspace.this.id, role = "AzureML Compute Operator" }
    worker_reader    = { principal = azurerm_user_assigned_identity.worker.principal_id, scope = azurerm_resource_group.this.id, role = "Reader" }
    worker_aks       = { principal = azurerm_user_assigned_identity.worker.principal_id, scope = azurerm_resource_group.this.id, role = "Azure Kubernetes Service Contributor Role" }
    # Azure ML jobs read the datasets the server wrote.
    workspace_artifacts = { principal = azurerm_machine_learning_workspace.this.identity[0].principal_id, scope = azurerm_storage_container.artifacts.id, role = "Storage Blob Data Reader" }
  }
  # The server's ARM REST calls (data assets, jobs, models, online endpoints; no
  # compute, no workspace settings): made by the workers' identity with workload
  # identity, by the executor's service principal with a client secret.
  arm_principal = var.server_credential == "client_secret" ? azuread_service_principal.executor[0].object_id : azurerm_user_assigned_identity.worker.principal_id
  all_role_assignments = merge(local.role_assignments, {
    server_workspace = { principal = local.arm_principal, scope = azurerm_machine_learning_workspace.this.id, role = "AzureML Data Scientist" }
  })
}

resource "azurerm_role_assignment" "roastery" {
  for_each             = local.all_role_assignments
  scope                = each.value.scope
  role_definition_name = each.value.role
  principal_id         = each.value.principal
  # New service principals take a while to replicate in Azure AD.
  skip_service_principal_aad_check = true
}
