//! Security tests of the real `airlock` binary: one module per attack, each named after it. They run the binary
//! as a subprocess against a throwaway `AIRLOCK_HOME` and check the result with the library.

#[path = "../common/mod.rs"]
mod common;

mod concurrent_writers;
mod daemon_capability_call_as_another_agents_tool;
mod daemon_run_attached_under_another_agents_run;
mod daemon_run_control_across_agents;
mod daemon_secret_value_exfiltration_through_api;
mod daemon_socket_reached_from_inside_a_sandbox;
mod daemon_tcp_api_without_client_certificate;
mod freed_heap_scraped_for_secrets;
mod kill9_during_key_rotate;
mod kill9_during_secret_set;
mod memory_read_from_an_unlocked_process;
mod sandbox_background_process_left_behind;
mod sandbox_cpu_spin;
mod sandbox_direct_connect_bypassing_proxy;
mod sandbox_direct_connect_to_host_loopback;
mod sandbox_dns_lookup;
mod sandbox_dotdot_traversal_in_arguments;
mod sandbox_fifo_and_device_nodes;
mod sandbox_fork_bomb;
mod sandbox_forwarder_to_denied_host;
mod sandbox_git_dir_swapped_for_planted_hooks;
mod sandbox_git_file_redirected_to_planted_hooks;
mod sandbox_git_hooks_planted;
mod sandbox_git_repo_planted_in_workspace;
mod sandbox_hardlink_escape_from_workspace;
mod sandbox_kernel_keyring;
mod sandbox_memory_bomb;
mod sandbox_output_flood;
mod sandbox_policy_file_rewritten_from_inside;
mod sandbox_print_secrets_to_the_agent;
mod sandbox_ptrace_parent;
mod sandbox_raw_socket_and_ping;
mod sandbox_read_broker_memory;
mod sandbox_read_host_credentials;
mod sandbox_read_init_environ;
mod sandbox_read_vault_file;
mod sandbox_shell_injection_in_arguments;
mod sandbox_symlink_escape_from_workspace;
mod sandbox_terminal_input_injection;
mod sandbox_unshare_namespaces;
mod sandbox_write_outside_workspace;
mod secret_value_leak_canary_scan;
mod secret_value_pasted_into_another_argument;
mod secret_value_via_argv_refused;
mod stale_temp_cleanup;
