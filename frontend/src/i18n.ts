// UI strings. The language comes from data-lang / init({lang}), then the page's <html lang>,
// then the browser; anything unknown falls back to English.

export type Strings = {
  open: string;
  close: string;
  placeholder: string;
  send: string;
  stop: string;
  copy: string;
  copied: string;
  helpful: string;
  notHelpful: string;
  thanks: string;
  sources: string;
  offline: string;
  rateLimited: string;
  providerError: string;
  originNotAllowed: string;
  noAnswer: string;
  thinking: string;
  failed: string;
  restart: string;
  you: string;
};

const en: Strings = {
  open: "Open chat with {name}",
  close: "Close chat",
  placeholder: "Ask a question…",
  send: "Send",
  stop: "Stop",
  copy: "Copy answer",
  copied: "Copied",
  helpful: "Helpful",
  notHelpful: "Not helpful",
  thanks: "Thanks for the feedback",
  sources: "Sources",
  offline: "You are offline. Check your connection and try again.",
  rateLimited: "Too many questions at once. Try again in {s} seconds.",
  providerError: "The answer could not be finished. Please try again.",
  originNotAllowed: "This assistant is not enabled on this website.",
  noAnswer: "No answer was found in this site's content.",
  thinking: "Thinking…",
  failed: "Something went wrong. Please try again.",
  restart: "New conversation",
  you: "You",
};

const table: Record<string, Strings> = {
  en,
  de: {
    open: "Chat mit {name} öffnen",
    close: "Chat schließen",
    placeholder: "Stellen Sie eine Frage…",
    send: "Senden",
    stop: "Stopp",
    copy: "Antwort kopieren",
    copied: "Kopiert",
    helpful: "Hilfreich",
    notHelpful: "Nicht hilfreich",
    thanks: "Danke für Ihr Feedback",
    sources: "Quellen",
    offline: "Sie sind offline. Prüfen Sie Ihre Verbindung und versuchen Sie es erneut.",
    rateLimited: "Zu viele Fragen auf einmal. Versuchen Sie es in {s} Sekunden erneut.",
    providerError: "Die Antwort konnte nicht fertiggestellt werden. Bitte erneut versuchen.",
    originNotAllowed: "Dieser Assistent ist auf dieser Website nicht freigeschaltet.",
    noAnswer: "In den Inhalten dieser Website wurde keine Antwort gefunden.",
    thinking: "Denke nach…",
    failed: "Etwas ist schiefgelaufen. Bitte erneut versuchen.",
    restart: "Neues Gespräch",
    you: "Sie",
  },
  fr: {
    open: "Ouvrir la discussion avec {name}",
    close: "Fermer la discussion",
    placeholder: "Posez une question…",
    send: "Envoyer",
    stop: "Arrêter",
    copy: "Copier la réponse",
    copied: "Copié",
    helpful: "Utile",
    notHelpful: "Pas utile",
    thanks: "Merci pour votre avis",
    sources: "Sources",
    offline: "Vous êtes hors ligne. Vérifiez votre connexion et réessayez.",
    rateLimited: "Trop de questions à la fois. Réessayez dans {s} secondes.",
    providerError: "La réponse n'a pas pu être terminée. Veuillez réessayer.",
    originNotAllowed: "Cet assistant n'est pas activé sur ce site.",
    noAnswer: "Aucune réponse trouvée dans le contenu de ce site.",
    thinking: "Réflexion…",
    failed: "Une erreur est survenue. Veuillez réessayer.",
    restart: "Nouvelle conversation",
    you: "Vous",
  },
  es: {
    open: "Abrir chat con {name}",
    close: "Cerrar chat",
    placeholder: "Haz una pregunta…",
    send: "Enviar",
    stop: "Detener",
    copy: "Copiar respuesta",
    copied: "Copiado",
    helpful: "Útil",
    notHelpful: "No útil",
    thanks: "Gracias por tu opinión",
    sources: "Fuentes",
    offline: "Estás sin conexión. Comprueba tu conexión e inténtalo de nuevo.",
    rateLimited: "Demasiadas preguntas a la vez. Inténtalo de nuevo en {s} segundos.",
    providerError: "No se pudo completar la respuesta. Inténtalo de nuevo.",
    originNotAllowed: "Este asistente no está habilitado en este sitio web.",
    noAnswer: "No se encontró respuesta en el contenido de este sitio.",
    thinking: "Pensando…",
    failed: "Algo salió mal. Inténtalo de nuevo.",
    restart: "Nueva conversación",
    you: "Tú",
  },
  ar: {
    open: "افتح المحادثة مع {name}",
    close: "أغلق المحادثة",
    placeholder: "اطرح سؤالاً…",
    send: "إرسال",
    stop: "إيقاف",
    copy: "انسخ الإجابة",
    copied: "تم النسخ",
    helpful: "مفيد",
    notHelpful: "غير مفيد",
    thanks: "شكراً على ملاحظاتك",
    sources: "المصادر",
    offline: "أنت غير متصل. تحقق من اتصالك وحاول مرة أخرى.",
    rateLimited: "أسئلة كثيرة في وقت واحد. حاول مرة أخرى بعد {s} ثانية.",
    providerError: "تعذر إكمال الإجابة. حاول مرة أخرى.",
    originNotAllowed: "هذا المساعد غير مفعّل على هذا الموقع.",
    noAnswer: "لم يتم العثور على إجابة في محتوى هذا الموقع.",
    thinking: "جارٍ التفكير…",
    failed: "حدث خطأ ما. حاول مرة أخرى.",
    restart: "محادثة جديدة",
    you: "أنت",
  },
  ja: {
    open: "{name} とのチャットを開く",
    close: "チャットを閉じる",
    placeholder: "質問を入力…",
    send: "送信",
    stop: "停止",
    copy: "回答をコピー",
    copied: "コピーしました",
    helpful: "役に立った",
    notHelpful: "役に立たなかった",
    thanks: "フィードバックありがとうございます",
    sources: "出典",
    offline: "オフラインです。接続を確認してもう一度お試しください。",
    rateLimited: "質問が多すぎます。{s} 秒後にもう一度お試しください。",
    providerError: "回答を完了できませんでした。もう一度お試しください。",
    originNotAllowed: "このアシスタントはこのウェブサイトでは有効になっていません。",
    noAnswer: "このサイトの内容に答えが見つかりませんでした。",
    thinking: "考え中…",
    failed: "問題が発生しました。もう一度お試しください。",
    restart: "新しい会話",
    you: "あなた",
  },
};

const RIGHT_TO_LEFT = new Set(["ar", "he", "fa", "ur"]);

/** The supported language for the first usable of ``candidates`` ("pt-BR" → "pt" → …). */
export function pickLanguage(candidates: Array<string | null | undefined>): string {
  for (const candidate of candidates) {
    if (!candidate) continue;
    const base = candidate.toLowerCase().split(/[-_]/)[0] ?? "";
    if (base in table) return base;
  }
  return "en";
}

/** The UI strings of ``lang`` and the text direction to render them in. */
export function stringsFor(lang: string): { strings: Strings; dir: "ltr" | "rtl" } {
  return { strings: table[lang] ?? en, dir: RIGHT_TO_LEFT.has(lang) ? "rtl" : "ltr" };
}

/** ``template`` with each ``{name}`` replaced by ``values[name]``. */
export function format(template: string, values: Record<string, string | number>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in values ? String(values[name]) : whole,
  );
}
