# Key Vault: the three secrets the server reads (mounted by the Secrets Store
# CSI driver, deploy/k8s/base/secretproviderclass.yaml). RBAC, not access
# policies; the cluster reaches it through a private endpoint.
resource "azurerm_key_vault" "this" {
  name                          = substr("kv-${local.name}-${var.name_suffix}", 0, 24)
  location                      = azurerm_resource_group.this.location
  resource_group_name           = azurerm_resource_group.this.name
  tenant_id                     = var.tenant_id
  sku_name                      = "standard"
  enable_rbac_authorization     = true
  purge_protection_enabled      = var.key_vault_purge_protection
  soft_delete_retention_days    = 90
  public_network_access_enabled = true

  network_acls {
    default_action = "Deny"
    bypass         = "AzureServices"
    ip_rules       = var.operator_ip_ranges
  }

  tags = local.tags
}

resource "azurerm_private_endpoint" "vault" {
  name                = "pe-${local.name}-vault"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  subnet_id           = azurerm_subnet.private_endpoints.id

  private_service_connection {
    name                           = "vault"
    private_connection_resource_id = azurerm_key_vault.this.id
    subresource_names              = ["vault"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "vault"
    private_dns_zone_ids = [azurerm_private_dns_zone.vault.id]
  }

  tags = local.tags
}

# Whoever runs terraform writes the secrets below.
resource "azurerm_role_assignment" "deployer_secrets" {
  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

locals {
  # With workload identity the "connection string" names the account only: the
  # server then sends Entra ID tokens, and there is no executor secret.
  storage_connection_string = var.server_credential == "client_secret" ? azurerm_storage_account.this.primary_blob_connection_string : "BlobEndpoint=${azurerm_storage_account.this.primary_blob_endpoint}"
  secrets = merge({
    "roastery-database-url"              = local.database_url
    "roastery-storage-connection-string" = local.storage_connection_string
    }, var.server_credential == "client_secret" ? {
    "roastery-executor-client-secret" = azuread_application_password.executor[0].value
  } : {})
}

resource "azurerm_key_vault_secret" "roastery" {
  for_each     = local.secrets
  name         = each.key
  value        = each.value
  key_vault_id = azurerm_key_vault.this.id
  content_type = "text/plain"
  # The executor secret carries its own expiry; the others rotate by hand
  # (docs/operations.md, "Key rotation").
  expiration_date = each.key == "roastery-executor-client-secret" ? azuread_application_password.executor[0].end_date : null

  depends_on = [azurerm_role_assignment.deployer_secrets]
}
