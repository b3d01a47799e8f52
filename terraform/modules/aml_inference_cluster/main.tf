resource "azurerm_kubernetes_cluster" "this" {
  name                = "${var.name}-aks"
  location            = var.location
  resource_group_name = var.resource_group_name
  dns_prefix          = lower(var.name)
  tags                = var.tags

  default_node_pool {
    name                 = "system"
    vm_size              = var.vm_size
    auto_scaling_enabled = true
    min_count            = var.min_nodes
    max_count            = var.max_nodes
    vnet_subnet_id       = var.subnet_id
  }

  identity {
    type = "SystemAssigned"
  }

  lifecycle {
    # The autoscaler owns the current node count.
    ignore_changes = [default_node_pool[0].node_count]

    # Cross-variable rules in validation blocks need Terraform >= 1.9.
    precondition {
      condition     = var.max_nodes >= var.min_nodes
      error_message = "The max_nodes (${var.max_nodes}) must be greater than or equal to min_nodes (${var.min_nodes})."
    }
  }
}

# Attaches the AKS cluster to the workspace as an inference compute target.
# Azure only supports create and delete for this resource: any change to
# its arguments replaces the attachment (the AKS cluster is kept).
resource "azurerm_machine_learning_inference_cluster" "this" {
  name                          = var.name
  location                      = var.location
  machine_learning_workspace_id = var.workspace_id
  kubernetes_cluster_id         = azurerm_kubernetes_cluster.this.id
  cluster_purpose               = var.cluster_purpose
  tags                          = var.tags
}
