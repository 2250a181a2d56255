//! `purser up`: the whole control plane in one process, wired by the template.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use purser_core::{Clock, Handler, HandlerError, SystemClock};
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::bus::{LocalBus, LocalBusConfig, Rule};
use crate::db::{Db, DbError};
use crate::dispatch::{Dispatcher, RetryTiming, Target};
use crate::http::{HttpState, Route};
use crate::inspect::{self, Unsettled};
use crate::lambdas::SimulatedLambdas;
use crate::organization::{SimulatedOrganization, SimulationConfig};
use crate::registry::{Registry, RegistryError};
use crate::store::SqliteStore;
use crate::template::{LocalContext, Template, TemplateError, Trigger};
use crate::timers::Timer;
use purser_core::budgets::FreezeExemptions;
use purser_core::{Ports, Settings, Unwired};

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub allow_aws_sources: bool,
    pub context: LocalContext,
    pub retry_timing: RetryTiming,
    /// Deliveries running at once.
    pub concurrency: usize,
    /// How long Ctrl-C waits for in-flight deliveries.
    pub shutdown_grace: Duration,
    /// How the simulated AWS Organization behaves (creation delay, limits).
    pub organization: SimulationConfig,
    /// The HTTP API's OpenAPI document, served at `/openapi.json`.
    pub openapi: Option<String>,
    /// Wraps the ports before the handlers are built on them (the fault
    /// injection of the system tests); `None` in `purser up`.
    pub wrap_ports: Option<PortsHook>,
}

/// A function from the embedded ports to the ports the handlers get, e.g.
/// the same ports behind a wrapper that fails chosen calls. The simulated
/// organization's own work (completing creations, announcing them on the
/// bus) and the HTTP endpoint's `PutEvents` stay on the embedded backends:
/// they play AWS, not Purser.
#[derive(Clone)]
pub struct PortsHook(pub Arc<dyn Fn(Ports) -> Ports + Send + Sync>);

impl PortsHook {
    pub fn new(wrap: impl Fn(Ports) -> Ports + Send + Sync + 'static) -> Self {
        Self(Arc::new(wrap))
    }
}

impl std::fmt::Debug for PortsHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PortsHook(..)")
    }
}

impl RuntimeConfig {
    pub fn new(data_dir: impl Into<PathBuf>, port: u16) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            allow_aws_sources: false,
            context: LocalContext::default(),
            retry_timing: RetryTiming::default(),
            concurrency: 16,
            shutdown_grace: Duration::from_secs(10),
            organization: SimulationConfig::default(),
            openapi: None,
            wrap_ports: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("infra/template.yaml: {0}")]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Unwired(#[from] Unwired),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot listen on {addr}: {source} (is another `purser up` running? try --port)")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running local control plane.
pub struct Running {
    addr: SocketAddr,
    bus: LocalBus,
    organization: Arc<SimulatedOrganization>,
    lambdas: Arc<SimulatedLambdas>,
    stack_sets: Arc<crate::blueprints::SimulatedStackSets>,
    cleaner: Arc<crate::cleaner::SimulatedCleaner>,
    ports: Ports,
    db: Db,
    /// The template's schedules and the handlers, to fire one on demand.
    timers: Vec<Timer>,
    handlers: BTreeMap<String, Arc<dyn Handler>>,
    context: LocalContext,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pub summary: Summary,
}

/// What the runtime wired up, for the start-up banner.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub functions: Vec<String>,
    pub rules: Vec<String>,
    pub timers: Vec<String>,
    pub routes: Vec<String>,
}

pub async fn start(
    config: RuntimeConfig,
    template: &Template,
    registry: &Registry,
    clock: Option<Arc<dyn Clock>>,
) -> Result<Running, StartError> {
    let wiring = template.wiring(&config.context)?;
    registry.check(&wiring)?;
    let db = Db::open(&config.data_dir)?;
    let clock = clock.unwrap_or_else(|| Arc::new(SystemClock));
    let ctx = &config.context;

    let mut rules = Vec::new();
    let mut timers = Vec::new();
    let mut routes = Vec::new();
    for wire in &wiring.wires {
        match &wire.trigger {
            Trigger::Rule {
                bus,
                pattern,
                retry,
                input,
                input_path,
                ..
            } => rules.push(Rule::of(wire, bus, pattern, *retry, input, input_path)),
            Trigger::Schedule {
                expression,
                scheduler,
                input,
                enabled,
                retry,
                ..
            } => {
                if *enabled {
                    timers.push(Timer {
                        name: wire.name(),
                        function: wire.function.clone(),
                        expression: expression.clone(),
                        scheduler: *scheduler,
                        input: input.clone(),
                        retry: *retry,
                    });
                }
            }
            Trigger::HttpRoute { method, path } => {
                // A route both HttpApis serve (the CLI's and the console's)
                // is one local route.
                let route = Route::new(method, path, &wire.function);
                if !routes.iter().any(|r: &Route| r.key() == route.key()) {
                    routes.push(route);
                }
            }
        }
    }
    let summary = Summary {
        functions: wiring
            .functions
            .iter()
            .map(|f| f.logical_id.clone())
            .collect(),
        rules: rules
            .iter()
            .map(|r| format!("{} (bus {})", r.name, r.bus))
            .collect(),
        timers: timers
            .iter()
            .map(|t| format!("{} {}", t.name, t.expression))
            .collect(),
        routes: routes
            .iter()
            .map(|r| format!("{} -> {}", r.key(), r.function))
            .collect(),
    };

    let wake = Arc::new(Notify::new());
    let bus = LocalBus::new(
        db.clone(),
        LocalBusConfig {
            rules,
            buses: wiring.buses.clone(),
            region: ctx.region.clone(),
            own_account: ctx.account_id.clone(),
            allow_aws_sources: config.allow_aws_sources,
        },
        Arc::clone(&clock),
        Arc::clone(&wake),
    );
    let mut org_config = config.organization.clone();
    org_config.management_account = ctx.account_id.clone();
    org_config.region = ctx.region.clone();
    let organization = Arc::new(SimulatedOrganization::new(
        db.clone(),
        bus.clone(),
        org_config,
    ));
    let lambdas = Arc::new(SimulatedLambdas::new(db.clone()));
    let stack_sets = Arc::new(crate::blueprints::SimulatedStackSets::new(db.clone()));
    let cleaner = Arc::new(crate::cleaner::SimulatedCleaner::new(
        db.clone(),
        Arc::clone(&clock),
    ));
    let resources = Arc::new(crate::member_resources::SimulatedResources::new(
        db.clone(),
        bus.clone(),
        Arc::clone(&clock),
    ));
    // Locally every function has every port: one process plays them all.
    let ports = Ports {
        store: Arc::new(SqliteStore::new(db.clone())),
        bus: Arc::new(bus.clone()),
        organization: organization.clone(),
        clock,
        member_lambdas: lambdas.clone(),
        lake: Some(Arc::new(crate::lake::LocalLakeSink::new(&config.data_dir))),
        queries: Some(Arc::new(purser_query::LocalLake::new(&config.data_dir))),
        // IAM Identity Center, simulated: every team member named by email
        // is a user.
        identity_center: Some(Arc::new(
            crate::identity_center::SimulatedIdentityCenter::new(db.clone()).with_team_members(),
        )),
        // Emails into <data-dir>/outbox/, chat webhooks really posted.
        notifier: Some(Arc::new(crate::notifier::LocalNotifier::new(
            &config.data_dir,
            db.clone(),
        ))),
        dead_letters: Some(Arc::new(crate::inspect::LocalDeadLetters::new(db.clone()))),
        // Blueprints recorded as deployed (sim_blueprint_deployments).
        blueprints: Some(stack_sets.clone()),
        // Cleaning recorded in sim_cleaning_runs, finished at once (unless
        // told to fail), the account's simulated functions removed.
        cleaner: Some(cleaner.clone()),
        // Metric-stream objects as files under <data-dir>/landing/.
        landing: Some(Arc::new(crate::landing::LocalLanding::new(
            &config.data_dir,
        ))),
        running: Arc::new(SqliteStore::new(db.clone())),
        // Instances and endpoints the member accounts' events told of
        // (sim_resources); a stop puts AWS's state change on the bus.
        member_resources: Some(resources),
        settings: Settings {
            // The simulated organization attaches SCPs to accounts only:
            // each account gets the default guardrails itself.
            guardrails: purser_core::guardrails::GuardrailSettings::default(),
            guardrails_on_ou: false,
            // aws-nuke never touches the local management account.
            recycling: purser_core::RecyclingSettings {
                blocklist: vec![ctx.account_id.clone()],
                protected: Default::default(),
            },
            admins: vec![crate::LOCAL_ADMIN.to_string()],
            region: ctx.region.clone(),
            // The role Organizations creates in each account, and a
            // `break-glass` role to try the exemption with.
            freeze_exemptions: FreezeExemptions {
                break_glass_roles: vec!["break-glass".into()],
                purser_role: "OrganizationAccountAccessRole".into(),
                // The simulated organization has no Control Tower.
                control_tower: false,
            },
            // The CUR is whatever <data-dir>/lake/cur/ holds (an empty
            // table without it).
            cur: true,
            // Any owner address locally.
            owner_domains: Vec::new(),
            approval_expiry_days: purser_core::leases::DEFAULT_APPROVAL_EXPIRY_DAYS,
            access: Some(local_access()),
            notify: purser_core::notify::NotifySettings {
                // The local platform admin's address (as `AdminEmails`).
                admin_emails: vec![LOCAL_ADMIN_EMAIL.into()],
                topic: true,
                email: true,
            },
        },
    };
    let ports = match &config.wrap_ports {
        Some(PortsHook(wrap)) => wrap(ports),
        None => ports,
    };
    let handlers = registry.build(&ports)?;
    let ports_kept = ports.clone();
    let timeouts: BTreeMap<&str, Duration> = wiring
        .functions
        .iter()
        .map(|f| (f.logical_id.as_str(), f.timeout))
        .collect();
    let targets = handlers
        .iter()
        .map(|(name, handler)| {
            let timeout = timeouts
                .get(name.as_str())
                .copied()
                .unwrap_or(Duration::from_secs(3));
            (
                name.clone(),
                Target {
                    handler: Arc::clone(handler),
                    timeout,
                },
            )
        })
        .collect();

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen,
        source,
    })?;

    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    let dispatcher = Dispatcher {
        db: db.clone(),
        targets: Arc::new(targets),
        wake,
        timing: config.retry_timing,
        concurrency: config.concurrency.max(1),
        grace: config.shutdown_grace,
    };
    let token = stop.clone();
    tasks.push(tokio::spawn(async move {
        if let Err(e) = dispatcher.run(token).await {
            tracing::error!(error = %e, "the local dispatcher stopped");
        }
    }));
    tasks.push(tokio::spawn(Arc::clone(&organization).run(stop.clone())));
    tasks.push(tokio::spawn(crate::landing::watch(
        db.clone(),
        bus.clone(),
        config.data_dir.clone(),
        stop.clone(),
    )));
    let timers_kept = timers.clone();
    for timer in timers {
        let (bus, token) = (bus.clone(), stop.clone());
        let (account, region) = (ctx.account_id.clone(), ctx.region.clone());
        tasks.push(tokio::spawn(timer.run(bus, account, region, token)));
    }
    let handlers_kept = handlers.clone();
    let mut state = HttpState::new(
        routes,
        handlers,
        bus.clone(),
        ctx.account_id.clone(),
        ctx.region.clone(),
    );
    state.openapi = config.openapi.clone();
    let state = Arc::new(state);
    let token = stop.clone();
    tasks.push(tokio::spawn(async move {
        let app = crate::http::router(state);
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the local HTTP endpoint stopped");
        }
    }));
    tracing::info!(%addr, data = %db.path().display(), "purser is up");
    Ok(Running {
        addr,
        bus,
        organization,
        lambdas,
        stack_sets,
        cleaner,
        ports: ports_kept,
        db,
        timers: timers_kept,
        handlers: handlers_kept,
        context: ctx.clone(),
        stop,
        tasks,
        summary,
    })
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn bus(&self) -> &LocalBus {
        &self.bus
    }

    /// The simulated AWS Organization, e.g. to make the next creation fail.
    pub fn organization(&self) -> &SimulatedOrganization {
        &self.organization
    }

    /// The member accounts' simulated Lambda functions, e.g. to deploy one.
    pub fn lambdas(&self) -> &SimulatedLambdas {
        &self.lambdas
    }

    /// The simulated StackSets of lease templates' blueprints: what was
    /// deployed where, and StackSets told to fail.
    pub fn stack_sets(&self) -> &crate::blueprints::SimulatedStackSets {
        &self.stack_sets
    }

    /// The simulated cleaner of pooled accounts: its runs, and accounts
    /// told to fail (`fail_account`).
    pub fn cleaner(&self) -> &crate::cleaner::SimulatedCleaner {
        &self.cleaner
    }

    /// The ports the handlers were built on (wrapped, when the config
    /// says so), to drive a handler directly.
    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Waits until every event put so far has been delivered (see
    /// [`inspect::settle`]).
    pub async fn settle(&self, within: Duration) -> Result<(), Unsettled> {
        inspect::settle(&self.db, within).await
    }

    /// Fires `function`'s schedule now, with the payload its timer sends,
    /// and returns what the handler answered: the demo and tests need not
    /// wait for a 15-minute rate. The timer itself keeps its own pace.
    pub async fn run_schedule(&self, function: &str) -> Result<Value, HandlerError> {
        let timer = self
            .timers
            .iter()
            .find(|t| t.function == function)
            .ok_or_else(|| {
                HandlerError::new(
                    "NoSchedule",
                    format!("the template gives {function} no schedule"),
                )
            })?;
        let handler = self.handlers.get(function).ok_or_else(|| {
            HandlerError::new("NoHandler", format!("no handler is built for {function}"))
        })?;
        let payload = timer.payload(
            self.ports.clock.now(),
            &self.context.account_id,
            &self.context.region,
        );
        handler.handle(payload).await
    }

    /// Stops taking requests and firing timers, lets in-flight deliveries
    /// finish (within the grace period) and returns. Undelivered events stay
    /// queued in the database for the next start.
    pub async fn shutdown(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// The access portal and permission sets of the simulated Identity Center.
pub fn local_access() -> purser_core::access::AccessSettings {
    use purser_core::access::{AccessSettings, PermissionSet};
    AccessSettings {
        portal_url: LOCAL_PORTAL.into(),
        developer: PermissionSet {
            arn: "arn:aws:sso:::permissionSet/ssoins-local/ps-developer".into(),
            name: "PurserDeveloper".into(),
        },
        read_only: Some(PermissionSet {
            arn: "arn:aws:sso:::permissionSet/ssoins-local/ps-readonly".into(),
            name: "PurserReadOnly".into(),
        }),
    }
}

/// The simulated access portal's URL: a sign-in link locally has the shape
/// AWS's has, and leads nowhere.
pub const LOCAL_PORTAL: &str = "https://d-0000000000.awsapps.com/start";

/// The address `purser up` mails the platform admins at, where they must act.
pub const LOCAL_ADMIN_EMAIL: &str = "platform-admins@example.com";
