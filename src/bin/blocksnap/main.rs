//! The `blocksnap` command: a thin layer over the library that prints Lightsail
//! response shapes as JSON.

mod args;
mod progress;

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::ExitCode;

use blocksnap::access::Policy;
use blocksnap::model::{
    CreateDiskFromSnapshotResult, CreateDiskSnapshotResult, DeleteDiskSnapshotResult,
    GetDiskSnapshotResult, GetDiskSnapshotsResult, GetOperationResult,
    GetOperationsForResourceResult, GetOperationsResult, Operation, RegionName, Tag,
    TagResourceResult, UntagResourceResult,
};
use blocksnap::{validate_resource_name, validate_tags, Error, Store, StoreOptions};
use clap::{CommandFactory, Parser};
use serde::Serialize;

use args::{Cli, Command};

/// Exit status when `verify` finds a problem.
const EXIT_VERIFY_FAILED: u8 = 3;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BLOCKSNAP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version requests print to stdout and exit 0. A bare
        // `blocksnap` prints the help to stderr and exits 2.
        Err(error)
            if !error.use_stderr()
                || error.kind()
                    == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            error.exit()
        }
        // With BLOCKSNAP_STORE set, clap counts `--store` as given, so a
        // bare `blocksnap` is a missing subcommand rather than a request for
        // help. It gets the same help and status either way.
        Err(error) if error.kind() == clap::error::ErrorKind::MissingSubcommand => {
            eprintln!("{}", Cli::command().render_help());
            return ExitCode::from(2);
        }
        Err(error) => {
            // Usage errors name the Lightsail exception like every other error,
            // and keep clap's exit status 2.
            let rendered = error.render().to_string();
            let message = rendered.trim_end();
            let message = message.strip_prefix("error: ").unwrap_or(message);
            eprintln!(
                "blocksnap: {}: {message}",
                blocksnap::ErrorKind::InvalidInput
            );
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("blocksnap: {}: {}", error.kind(), error.detailed_message());
            ExitCode::FAILURE
        }
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "one short match arm per subcommand reads best as one dispatch table"
)]
fn run(cli: Cli) -> Result<ExitCode, Error> {
    let policy = cli.policy.as_deref().map(load_policy).transpose()?;
    let region = cli
        .region
        .as_deref()
        .map(|text| {
            text.parse::<RegionName>().map_err(|error| {
                Error::invalid_input(format!("{error}. Pass one of them to --region"))
            })
        })
        .transpose()?;
    // Only a create makes a new store, so that a mistyped --store fails
    // instead of leaving an empty store behind.
    let create_if_missing = matches!(cli.command, Command::CreateDiskSnapshot { .. });
    if create_if_missing && !cli.read_only {
        check_create_before_open(&cli)?;
    }
    let store = Store::open_with(
        &cli.store,
        StoreOptions {
            block_size: cli.block_size,
            region,
            fault_injector: None,
            read_only: cli.read_only,
            create_if_missing,
        },
    )
    .map_err(|error| {
        if error.kind() == blocksnap::ErrorKind::NotFound && !create_if_missing && !cli.read_only {
            Error::not_found(format!(
                "there is no store at {}. Only create-disk-snapshot creates a store. To use an \
                 existing store, pass its directory with --store or BLOCKSNAP_STORE",
                cli.store.display()
            ))
        } else {
            error
        }
    })?;
    store.set_policy(policy);
    // Rejected before a source is opened or a block list read, which can
    // block (a FIFO) or fail for reasons that do not matter here.
    let change = match &cli.command {
        Command::CreateDiskSnapshot { .. } => Some("create a disk snapshot"),
        Command::DeleteDiskSnapshot { .. } => Some("delete a disk snapshot"),
        Command::TagResource { .. } => Some("tag a resource"),
        Command::UntagResource { .. } => Some("untag a resource"),
        Command::Verify { repair: true } => Some("repair the store"),
        _ => None,
    };
    if let Some(action) = change {
        store.check_writable(action)?;
    }

    match cli.command {
        Command::CreateDiskSnapshot {
            disk_name,
            disk_snapshot_name,
            source,
            tags,
            changed_blocks: Some(list),
            parent_disk_snapshot_name,
        } => {
            let tags = parse_tags(&tags)?;
            let changed = read_block_list(&list)?;
            let parent = match parent_disk_snapshot_name {
                Some(parent) => parent,
                None => newest_snapshot_of(&store, &disk_name)?,
            };
            let file = open_seekable_source(&source)?;
            let reporter = progress::Reporter::new("read");
            let operations = store.create_disk_snapshot_incremental_with_progress(
                &disk_name,
                &disk_snapshot_name,
                &parent,
                &changed,
                file,
                &tags,
                Some(&|bytes| reporter.update(bytes)),
            )?;
            reporter.finish();
            let result = CreateDiskSnapshotResult { operations };
            print_committed(&store, &result, &result.operations)
        }
        Command::CreateDiskSnapshot {
            disk_name,
            disk_snapshot_name,
            source,
            tags,
            ..
        } => {
            let tags = parse_tags(&tags)?;
            let reader = open_source(&source)?;
            let reporter = progress::Reporter::new("read");
            let operations = store.create_disk_snapshot_with_progress(
                &disk_name,
                &disk_snapshot_name,
                reader,
                &tags,
                Some(&|bytes| reporter.update(bytes)),
            )?;
            reporter.finish();
            let result = CreateDiskSnapshotResult { operations };
            print_committed(&store, &result, &result.operations)
        }
        Command::DeleteDiskSnapshot { disk_snapshot_name } => {
            let operations = store.delete_disk_snapshot(&disk_snapshot_name)?;
            let result = DeleteDiskSnapshotResult { operations };
            print_committed(&store, &result, &result.operations)
        }
        Command::CreateDiskFromSnapshot {
            disk_snapshot_name,
            disk_name,
            target,
        } => {
            let reporter = progress::Reporter::new("written");
            let operations = store.create_disk_from_snapshot_to_file(
                &disk_snapshot_name,
                &disk_name,
                &target,
                Some(&|bytes| reporter.update(bytes)),
            )?;
            reporter.finish();
            let result = CreateDiskFromSnapshotResult { operations };
            print_committed(&store, &result, &result.operations)
        }
        Command::GetDiskSnapshot { disk_snapshot_name } => {
            let disk_snapshot = store.get_disk_snapshot(&disk_snapshot_name)?;
            print_json(&GetDiskSnapshotResult { disk_snapshot })
        }
        Command::GetDiskSnapshots { page_token } => {
            let page = store.get_disk_snapshots(page_token.as_deref())?;
            print_json(&GetDiskSnapshotsResult {
                disk_snapshots: page.items,
                next_page_token: page.next_page_token,
            })
        }
        Command::GetOperation { operation_id } => {
            let operation = store.get_operation(&operation_id)?;
            print_json(&GetOperationResult { operation })
        }
        Command::GetOperations { page_token } => {
            let page = store.get_operations(page_token.as_deref())?;
            print_json(&GetOperationsResult {
                operations: page.items,
                next_page_token: page.next_page_token,
            })
        }
        Command::GetOperationsForResource {
            resource_name,
            page_token,
        } => {
            let page = store.get_operations_for_resource(&resource_name, page_token.as_deref())?;
            print_json(&GetOperationsForResourceResult {
                operations: page.items,
                next_page_count: None,
                next_page_token: page.next_page_token,
            })
        }
        Command::ListChangedBlocks {
            first_disk_snapshot_name,
            second_disk_snapshot_name,
        } => {
            let changed_blocks =
                store.list_changed_blocks(&first_disk_snapshot_name, &second_disk_snapshot_name)?;
            print_json(&ChangedBlocks {
                block_size: store.block_size(),
                changed_blocks,
            })
        }
        Command::GetSnapshotBlock {
            disk_snapshot_name,
            block_index,
            target,
        } => {
            let block = store.read_block(&disk_snapshot_name, block_index)?;
            if let Some(target) = &target {
                store.check_target_outside_store(target)?;
                std::fs::write(target, &block.data).map_err(|error| {
                    Error::operation_failure(format!(
                        "writing block {block_index} to {} failed ({error})",
                        target.display()
                    ))
                    .with_source(error)
                })?;
            }
            print_json(&BlockInfo {
                block_index,
                block_size: store.block_size(),
                data_length: block.data.len(),
                block_hash: block.hash.to_hex(),
                is_zero: block.hash.is_zero(),
            })
        }
        Command::TagResource {
            resource_name,
            tags,
        } => {
            let operations = store.tag_resource(&resource_name, &parse_tags(&tags)?)?;
            let result = TagResourceResult { operations };
            print_committed(&store, &result, &result.operations)
        }
        Command::UntagResource {
            resource_name,
            tag_keys,
        } => {
            let operations = store.untag_resource(&resource_name, &tag_keys)?;
            let result = UntagResourceResult { operations };
            print_committed(&store, &result, &result.operations)
        }
        Command::Verify { repair: true } => {
            let report = store.repair()?;
            print_report(
                "repair",
                &report.problems,
                &report,
                report.is_fully_repaired(),
            )
        }
        Command::Verify { repair: false } => {
            let report = store.verify()?;
            print_report("verify", &report.problems, &report, report.is_clean())
        }
        Command::Stats => print_json(&store.stats()?),
    }
}

fn print_json<T: Serialize>(value: &T) -> Result<ExitCode, Error> {
    let text = serde_json::to_string_pretty(value).map_err(|error| {
        Error::service("encoding the JSON output failed. This is a bug in blocksnap")
            .with_source(error)
    })?;
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(|error| {
            Error::operation_failure(format!("writing to standard output failed ({error})"))
                .with_source(error)
        })?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the result of a call that changed the store. If stdout fails, the
/// error states that the change is committed and names its operations. A
/// script that retried the call would otherwise repeat it, or fail on the
/// name it already took.
fn print_committed<T: Serialize>(
    store: &Store,
    value: &T,
    operations: &[Operation],
) -> Result<ExitCode, Error> {
    print_json(value).map_err(|error| {
        let done: Vec<String> = operations
            .iter()
            .map(|operation| {
                format!(
                    "{} of {} (operation {})",
                    operation.operation_type, operation.resource_name, operation.id
                )
            })
            .collect();
        if store.is_read_only() {
            return Error::operation_failure(format!(
                "{}. The call itself succeeded: {}. Its operation records are not kept, \
                 because the store is open read-only",
                error.message(),
                done.join(", ")
            ));
        }
        Error::operation_failure(format!(
            "{}. The call itself succeeded and is committed: {}. Do not repeat it. \
             `get-operation --operation-id ID` shows the result again",
            error.message(),
            done.join(", ")
        ))
    })
}

/// Prints each of `problems` to stderr, labelled with `command`, and `report`
/// as JSON to stdout. Returns [`EXIT_VERIFY_FAILED`] as the exit status
/// unless `passed`, even when stdout fails, because that status is how a
/// script learns of damage.
fn print_report<T: Serialize>(
    command: &str,
    problems: &[String],
    report: &T,
    passed: bool,
) -> Result<ExitCode, Error> {
    for problem in problems {
        eprintln!("blocksnap: {command}: {problem}");
    }
    if let Err(error) = print_json(report) {
        let outcome = if command == "repair" {
            "The repair ran and is committed. `blocksnap verify` shows the store's state"
        } else if passed {
            "The store passed the check"
        } else {
            "The check found the problems listed above"
        };
        let error = Error::operation_failure(format!("{}. {outcome}", error.message()));
        if passed {
            return Err(error);
        }
        eprintln!("blocksnap: {}: {}", error.kind(), error.detailed_message());
    }
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_VERIFY_FAILED)
    })
}

fn load_policy(path: &Path) -> Result<Policy, Error> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        Error::invalid_input(format!(
            "policy file {} cannot be read ({error}). Pass a readable JSON file to --policy",
            path.display()
        ))
        .with_source(error)
    })?;
    Policy::from_json(&text).map_err(|error| {
        Error::invalid_input(format!(
            "policy file {} is not a supported policy: {error}",
            path.display()
        ))
        .with_source(error)
    })
}

fn parse_tags(pairs: &[String]) -> Result<Vec<Tag>, Error> {
    pairs
        .iter()
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair.as_str(), ""));
            if key.is_empty() {
                return Err(Error::invalid_input(format!(
                    "tag {pair:?} has an empty key. Write tags as --tag KEY=VALUE"
                )));
            }
            Ok(Tag {
                key: key.to_owned(),
                value: Some(value.to_owned()),
            })
        })
        .collect()
}

/// The output of `list-changed-blocks`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChangedBlocks {
    block_size: u32,
    changed_blocks: Vec<u64>,
}

/// The output of `get-snapshot-block`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BlockInfo {
    block_index: u64,
    block_size: u32,
    data_length: usize,
    block_hash: String,
    is_zero: bool,
}

/// Rejects a create with invalid arguments before the open creates a missing
/// store. Names and tags are checked here and again by the create. The
/// source and the parent are checked only when the store is missing, because
/// opening a FIFO source can block and a missing store has no parent.
fn check_create_before_open(cli: &Cli) -> Result<(), Error> {
    let Command::CreateDiskSnapshot {
        disk_name,
        disk_snapshot_name,
        source,
        tags,
        changed_blocks,
        ..
    } = &cli.command
    else {
        return Ok(());
    };
    validate_resource_name("disk name", disk_name)?;
    validate_resource_name("disk snapshot name", disk_snapshot_name)?;
    validate_tags(&parse_tags(tags)?)?;
    if Store::exists_at(&cli.store)? {
        return Ok(());
    }
    if source != Path::new("-") {
        let metadata = std::fs::metadata(source).map_err(|error| source_error(source, error))?;
        if metadata.is_dir() {
            return Err(directory_source_error(source));
        }
        // A block device reports a length of zero here, so only a regular
        // file is known to be empty. The create rejects an empty source too.
        if metadata.is_file() && metadata.len() == 0 {
            return Err(Error::invalid_input(format!(
                "source {} is empty. Give a disk image or device with at least one byte",
                source.display()
            )));
        }
    }
    if changed_blocks.is_some() {
        return Err(Error::not_found(format!(
            "there is no store at {}, so disk {disk_name:?} has no snapshot to be the parent \
             of a create with --changed-blocks. Create a full snapshot first, without \
             --changed-blocks",
            cli.store.display()
        )));
    }
    Ok(())
}

fn source_error(path: &Path, error: io::Error) -> Error {
    let message = format!(
        "source {} cannot be opened ({error}). Pass an existing image file or block device",
        path.display()
    );
    if error.kind() == io::ErrorKind::NotFound {
        Error::invalid_input(message).with_source(error)
    } else {
        Error::operation_failure(message).with_source(error)
    }
}

/// Reads a changed-block list: decimal indices separated by white space or commas.
fn read_block_list(path: &Path) -> Result<Vec<u64>, Error> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        Error::invalid_input(format!(
            "changed-block list {} cannot be read ({error}). Pass a readable text file",
            path.display()
        ))
        .with_source(error)
    })?;
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|word| !word.is_empty())
        .map(|word| {
            word.parse::<u64>().map_err(|_| {
                Error::invalid_input(format!(
                    "changed-block list {} contains {word:?}, which is not a block index. List decimal indices only",
                    path.display()
                ))
            })
        })
        .collect()
}

/// The name of the newest snapshot of `disk_name`, the default parent.
fn newest_snapshot_of(store: &Store, disk_name: &str) -> Result<String, Error> {
    let mut newest: Option<(blocksnap::model::Timestamp, String)> = None;
    let mut token: Option<String> = None;
    loop {
        let page = store.get_disk_snapshots(token.as_deref())?;
        for snapshot in page.items {
            if snapshot.from_disk_name.as_deref() == Some(disk_name)
                && newest
                    .as_ref()
                    .is_none_or(|(created, _)| snapshot.created_at > *created)
            {
                newest = Some((snapshot.created_at, snapshot.name));
            }
        }
        token = page.next_page_token;
        if token.is_none() {
            break;
        }
    }
    newest.map(|(_, name)| name).ok_or_else(|| {
        Error::invalid_input(format!(
            "disk {disk_name:?} has no snapshot to use as the parent of --changed-blocks. Take a full snapshot first"
        ))
    })
}

fn open_source(path: &Path) -> Result<Box<dyn Read + Send>, Error> {
    if path == Path::new("-") {
        return Ok(Box::new(io::stdin()));
    }
    Ok(Box::new(open_source_file(path)?))
}

/// Opens the source of a create with a changed-block list, which seeks to
/// each listed block. `-` is standard input, which can seek when it is
/// redirected from a file or block device. Through a pipe, the create fails
/// with the library's reason.
fn open_seekable_source(path: &Path) -> Result<File, Error> {
    if path == Path::new("-") {
        let stdin = io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|error| source_error(path, error))?;
        return Ok(File::from(stdin));
    }
    open_source_file(path)
}

/// Opens the image file or block device at `path`, rejecting a directory.
fn open_source_file(path: &Path) -> Result<File, Error> {
    let file = File::open(path).map_err(|error| source_error(path, error))?;
    if file.metadata().is_ok_and(|metadata| metadata.is_dir()) {
        return Err(directory_source_error(path));
    }
    Ok(file)
}

fn directory_source_error(path: &Path) -> Error {
    Error::invalid_input(format!(
        "source {} is a directory. Pass an image file or block device",
        path.display()
    ))
}
