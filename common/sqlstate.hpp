// PostgreSQL's SQLSTATE codes by name (errcodes.txt), for every error the proxy makes or reads.
// Errors carry one of these from the place that knows why; code never picks one from message text.
#pragma once

namespace seedproxy::sqlstate {

// Class 00, 08: success and connections.
inline constexpr char successful_completion[] = "00000";
inline constexpr char unable_to_connect[] = "08001";  // sqlclient_unable_to_establish_sqlconnection
inline constexpr char connection_failure[] = "08006";
inline constexpr char protocol_violation[] = "08P01";
// Class 22: data exceptions.
inline constexpr char invalid_parameter_value[] = "22023";
// Class 0A, 25, 28, 2B, 3F: features, transaction state, authorization, dependencies, schemas.
inline constexpr char feature_not_supported[] = "0A000";
inline constexpr char in_failed_sql_transaction[] = "25P02";
inline constexpr char invalid_authorization_specification[] = "28000";
inline constexpr char invalid_password[] = "28P01";
inline constexpr char dependent_objects_still_exist[] = "2BP01";
inline constexpr char invalid_schema_name[] = "3F000";
// Class 40: transaction rollback.
inline constexpr char serialization_failure[] = "40001";
inline constexpr char deadlock_detected[] = "40P01";
// Class 42: syntax errors and access rule violations.
inline constexpr char generated_always[] = "428C9";
inline constexpr char insufficient_privilege[] = "42501";
inline constexpr char syntax_error[] = "42601";
inline constexpr char invalid_column_definition[] = "42611";
inline constexpr char invalid_name[] = "42602";
inline constexpr char duplicate_column[] = "42701";
inline constexpr char ambiguous_column[] = "42702";
inline constexpr char undefined_column[] = "42703";
inline constexpr char undefined_object[] = "42704";
inline constexpr char ambiguous_function[] = "42725";
inline constexpr char grouping_error[] = "42803";
inline constexpr char datatype_mismatch[] = "42804";
inline constexpr char wrong_object_type[] = "42809";
inline constexpr char cannot_coerce[] = "42846";
inline constexpr char undefined_function[] = "42883";
inline constexpr char undefined_table[] = "42P01";
inline constexpr char invalid_column_reference[] = "42P10";
inline constexpr char invalid_object_definition[] = "42P17";
inline constexpr char windowing_error[] = "42P20";
// Class 53, 54, 55, 57, 58, F0, XX: resources, limits, state, intervention, system, configuration,
// internal.
inline constexpr char too_many_connections[] = "53300";
inline constexpr char configuration_limit_exceeded[] = "53400";
inline constexpr char program_limit_exceeded[] = "54000";
inline constexpr char statement_too_complex[] = "54001";
inline constexpr char object_not_in_prerequisite_state[] = "55000";
inline constexpr char lock_not_available[] = "55P03";
inline constexpr char query_canceled[] = "57014";
inline constexpr char admin_shutdown[] = "57P01";
inline constexpr char cannot_connect_now[] = "57P03";
inline constexpr char system_error[] = "58000";
inline constexpr char config_file_error[] = "F0000";
inline constexpr char internal_error[] = "XX000";

}  // namespace seedproxy::sqlstate
