fn main() -> std::process::ExitCode {
    idpsync::cli::main()
}
