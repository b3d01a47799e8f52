# var.location is deliberately not used: azurerm 4.0 removed the argument,
# an instance always runs in its workspace's region.
resource "azurerm_machine_learning_compute_instance" "this" {
  name                          = var.name
  machine_learning_workspace_id = var.workspace_id
  virtual_machine_size          = var.vm_size
  subnet_resource_id            = var.subnet_id
  tags                          = var.tags

  dynamic "assign_to_user" {
    for_each = var.assigned_user_object_id == null ? [] : [var.assigned_user_object_id]
    content {
      object_id = assign_to_user.value
      tenant_id = var.assigned_user_tenant_id
    }
  }

  lifecycle {
    precondition {
      condition     = (var.assigned_user_object_id == null) == (var.assigned_user_tenant_id == null)
      error_message = "The assigned_user_object_id and assigned_user_tenant_id must be given together, or both left null."
    }
  }
}
