locals {
  # Azure wants the idle time as an ISO-8601 (W3C XML schema) duration.
  scale_down_after = "PT${var.idle_minutes}M"
}

resource "azurerm_machine_learning_compute_cluster" "this" {
  name                          = var.name
  location                      = var.location
  machine_learning_workspace_id = var.workspace_id
  vm_size                       = var.vm_size
  vm_priority                   = var.vm_priority
  subnet_resource_id            = var.subnet_id
  tags                          = var.tags

  scale_settings {
    min_node_count                       = var.min_nodes
    max_node_count                       = var.max_nodes
    scale_down_nodes_after_idle_duration = local.scale_down_after
  }

  # Jobs on the cluster authenticate to storage, registries and key vaults
  # with this identity; grant it roles outside this module.
  identity {
    type = "SystemAssigned"
  }

  lifecycle {
    # Cross-variable rules in validation blocks need Terraform >= 1.9.
    precondition {
      condition     = var.max_nodes >= var.min_nodes
      error_message = "The max_nodes (${var.max_nodes}) must be greater than or equal to min_nodes (${var.min_nodes})."
    }
  }
}
