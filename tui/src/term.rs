//! The terminal and the event loop: raw mode + alternate screen, restored on every exit path
//! (quit, error, panic, SIGTERM/SIGHUP/SIGINT).

use std::io::{self, Stdout, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self as ct, Event as CtEvent, KeyEventKind};
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::Terminal;

use crate::app::{App, Options};
use crate::event::{Event, Request};
use crate::keys::{self, Effect};

#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error("standard output is not a terminal")]
    NotATerminal,
    #[error("setting up the terminal: {0}")]
    Setup(io::Error),
    #[error("drawing: {0}")]
    Draw(io::Error),
    #[error("reading the keyboard: {0}")]
    Input(io::Error),
    #[error("installing signal handlers: {0}")]
    Signals(io::Error),
}

/// Most events applied per frame, so a flood of results cannot starve the keyboard.
const EVENTS_PER_FRAME: usize = 5_000;
/// Keyboard poll interval (and the age/refresh tick).
const TICK: Duration = Duration::from_millis(100);

fn restore() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(io::stdout(), terminal::LeaveAlternateScreen, cursor::Show);
}

/// Restores the terminal when dropped.
struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

fn setup() -> Result<(Guard, Terminal<CrosstermBackend<Stdout>>), TuiError> {
    use std::io::IsTerminal;
    if !io::stdout().is_terminal() {
        return Err(TuiError::NotATerminal);
    }
    // A panic restores the terminal before the message is printed, so it is readable.
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        prev(info);
    }));
    terminal::enable_raw_mode().map_err(TuiError::Setup)?;
    let guard = Guard;
    execute!(io::stdout(), terminal::EnterAlternateScreen).map_err(TuiError::Setup)?;
    let term = Terminal::new(CrosstermBackend::new(io::stdout())).map_err(TuiError::Setup)?;
    Ok((guard, term))
}

/// Run the TUI until the operator quits (or a termination signal arrives).
///
/// `events` is drained without blocking; `requests` (when the producer supports it) receives
/// re-collection requests, including the `--refresh` rounds.
pub fn run(
    events: Receiver<Event>,
    requests: Option<Sender<Request>>,
    mut opts: Options,
) -> Result<(), TuiError> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGINT,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(TuiError::Signals)?;
    }
    opts.can_recollect = opts.can_recollect && requests.is_some();
    let mut app = App::new(opts);
    let (_guard, mut term) = setup()?;
    let mut connected = true;
    let mut redraw = true;
    let mut last_draw = Instant::now();
    while !app.quit && !stop.load(Ordering::Relaxed) {
        app.now = Instant::now();
        for _ in 0..EVENTS_PER_FRAME {
            if !connected {
                break;
            }
            match events.try_recv() {
                Ok(ev) => {
                    app.handle_event(ev);
                    redraw = true;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => connected = false,
            }
        }
        if let (Some(every), Some(tx)) = (app.opts.refresh, &requests) {
            if !app.frozen && app.now.saturating_duration_since(app.last_round) >= every {
                app.last_round = app.now;
                let _ = tx.send(Request::RecollectAll);
            }
        }
        // Ages tick once a second even without events.
        if redraw || last_draw.elapsed() >= Duration::from_secs(1) {
            term.draw(|f| crate::ui::draw(f, &mut app))
                .map_err(TuiError::Draw)?;
            last_draw = Instant::now();
            redraw = false;
        }
        if !ct::poll(TICK).map_err(TuiError::Input)? {
            continue;
        }
        // Handle every key already queued before drawing again.
        loop {
            match ct::read().map_err(TuiError::Input)? {
                CtEvent::Key(k) if k.kind != KeyEventKind::Release => {
                    for eff in keys::handle(&mut app, k) {
                        match eff {
                            Effect::Request(r) => {
                                if let Some(tx) = &requests {
                                    if tx.send(r).is_err() {
                                        app.status = Some(
                                            "the collector has stopped; cannot re-collect".into(),
                                        );
                                    }
                                }
                            }
                            Effect::Bundle(name) => {
                                app.status = Some(crate::bundle::write(&app, &name));
                            }
                            Effect::Copy(text) => {
                                let mut out = io::stdout();
                                app.status = Some(crate::clipboard::copy(
                                    &text,
                                    &mut out,
                                    &app.opts.copy_file,
                                ));
                                let _ = out.flush();
                            }
                        }
                    }
                }
                CtEvent::Resize(_, _) => {}
                _ => {}
            }
            redraw = true;
            if !ct::poll(Duration::ZERO).map_err(TuiError::Input)? {
                break;
            }
        }
    }
    Ok(())
}
