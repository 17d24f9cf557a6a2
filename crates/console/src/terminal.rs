//! Taking the terminal and giving it back: raw mode, the alternate screen, mouse capture and
//! a hidden cursor, all undone on every way out, a panic included. ratatui's own panic hook
//! leaves mouse capture on and the cursor hidden, so the panic message would land in a shell
//! that prints every mouse move as text; ours gives everything back before the message.

use std::io::{self, Write};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use crossterm::cursor::Show;
use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::DefaultTerminal;
use ratatui::backend::CrosstermBackend;

/// The console holds the terminal: a panic must give it back. Cleared once given back, so
/// that a panic after the console closed prints no escape sequences.
static TAKEN: AtomicBool = AtomicBool::new(false);
/// Mouse capture was turned on with it.
static MOUSE: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

/// Raw mode, the alternate screen and (if asked) mouse capture, with the panic hook in
/// place first. On an error whatever was taken is given back.
pub fn take(mouse: bool) -> io::Result<DefaultTerminal> {
    HOOK.call_once(install_panic_hook);
    MOUSE.store(mouse, Ordering::SeqCst);
    TAKEN.store(true, Ordering::SeqCst);
    let taken = (|| {
        enable_raw_mode()?;
        let mut out = io::stdout();
        crossterm::execute!(out, EnterAlternateScreen)?;
        if mouse {
            crossterm::execute!(out, EnableMouseCapture)?;
        }
        ratatui::Terminal::new(CrosstermBackend::new(io::stdout()))
    })();
    if taken.is_err() {
        give_back();
    }
    taken
}

/// Gives the terminal back as it was (best effort: it is being given back either way).
pub fn give_back() {
    // Raw mode first: it has more side effects than the screen switch.
    let _ = disable_raw_mode();
    let _ = restore_into(&mut io::stdout());
}

/// Writes what undoes [`take`] (mouse capture off, main screen, cursor shown) if the console
/// holds the terminal; true if it did. Only the first caller writes.
fn restore_into(out: &mut impl Write) -> io::Result<bool> {
    if !TAKEN.swap(false, Ordering::SeqCst) {
        return Ok(false);
    }
    write_restore(out, MOUSE.load(Ordering::SeqCst))?;
    Ok(true)
}

fn write_restore(out: &mut impl Write, mouse: bool) -> io::Result<()> {
    if mouse {
        crossterm::queue!(out, DisableMouseCapture)?;
    }
    crossterm::queue!(out, LeaveAlternateScreen, Show)?;
    out.flush()
}

/// The terminal first, then the previous hook (color-eyre's report) prints on a sane screen.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        give_back();
        previous(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn giving_back_turns_off_the_mouse_leaves_the_screen_and_shows_the_cursor_once() {
        let mut out = Vec::new();
        write_restore(&mut out, true).expect("a Vec takes writes");
        let text = String::from_utf8_lossy(&out);
        // DisableMouseCapture ends with ?1000l; the main screen is ?1049l; the cursor ?25h.
        let mouse = text.find("\x1b[?1000l").expect("mouse capture turned off");
        let screen = text.find("\x1b[?1049l").expect("alternate screen left");
        let cursor = text.find("\x1b[?25h").expect("cursor shown");
        assert!(mouse < screen && screen < cursor, "{text:?}");

        let mut out = Vec::new();
        write_restore(&mut out, false).expect("a Vec takes writes");
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("\x1b[?1000l"), "no mouse capture to undo");
        assert!(text.contains("\x1b[?1049l") && text.contains("\x1b[?25h"));

        // Only while the console holds the terminal, and only once.
        let mut out = Vec::new();
        assert!(!restore_into(&mut out).expect("writes"));
        assert!(out.is_empty());
        MOUSE.store(true, Ordering::SeqCst);
        TAKEN.store(true, Ordering::SeqCst);
        assert!(restore_into(&mut out).expect("writes"));
        assert!(String::from_utf8_lossy(&out).contains("\x1b[?1000l"));
        let mut again = Vec::new();
        assert!(!restore_into(&mut again).expect("writes"));
        assert!(again.is_empty());
    }
}
