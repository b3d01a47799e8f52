output "id" {
  description = "ARM id of the compute cluster (.../workspaces/<ws>/computes/<name>)."
  value       = azurerm_machine_learning_compute_cluster.this.id
}

output "name" {
  description = "Name of the compute cluster in the workspace."
  value       = azurerm_machine_learning_compute_cluster.this.name
}

output "principal_id" {
  description = "Object id of the cluster's system-assigned managed identity, for role assignments."
  value       = azurerm_machine_learning_compute_cluster.this.identity[0].principal_id
}
