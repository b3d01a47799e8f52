output "id" {
  description = "ARM id of the compute instance (.../workspaces/<ws>/computes/<name>)."
  value       = azurerm_machine_learning_compute_instance.this.id
}

output "name" {
  description = "Name of the compute instance in the workspace."
  value       = azurerm_machine_learning_compute_instance.this.name
}
