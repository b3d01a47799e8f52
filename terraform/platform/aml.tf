# The Azure ML workspace the azure executor targets (ROASTERY_AZUREML_WORKSPACE):
# compute from terraform/modules, jobs running the trainer image from the
# registry, models and online endpoints.
resource "azurerm_machine_learning_workspace" "this" {
  name                          = "mlw-${local.name}"
  location                      = azurerm_resource_group.this.location
  resource_group_name           = azurerm_resource_group.this.name
  application_insights_id       = azurerm_application_insights.this.id
  key_vault_id                  = azurerm_key_vault.this.id
  storage_account_id            = azurerm_storage_account.this.id
  container_registry_id         = azurerm_container_registry.this.id
  public_network_access_enabled = true
  # Datastores authenticate with identities, not the account key.
  v1_legacy_mode_enabled = false

  identity {
    type = "SystemAssigned"
  }

  tags = local.tags
}
