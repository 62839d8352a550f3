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
  person: string;
  details: string;
  requested: string;
  agent: string;
  closed: string;
  required: string;
  email: string;
  phone: string;
  consent: string;
  submit: string;
  leadThanks: string;
  leadFailed: string;
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
  person: "Talk to a person",
  details: "Leave your details",
  requested: "A person has been asked to join. Their reply will appear here.",
  agent: "Support",
  closed: "This conversation with a person is closed.",
  required: "Please fill this in.",
  email: "Please enter an email address.",
  phone: "Please enter a phone number.",
  consent: "Please agree to be contacted.",
  submit: "Send details",
  leadThanks: "Thanks! Your details were sent.",
  leadFailed: "That did not work. Please try again.",
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
    person: "Mit einer Person sprechen",
    details: "Kontaktdaten hinterlassen",
    requested: "Eine Person wurde gebeten, dazuzukommen. Ihre Antwort erscheint hier.",
    agent: "Support",
    closed: "Dieses Gespräch mit einer Person ist beendet.",
    required: "Bitte füllen Sie dieses Feld aus.",
    email: "Bitte geben Sie eine E-Mail-Adresse ein.",
    phone: "Bitte geben Sie eine Telefonnummer ein.",
    consent: "Bitte stimmen Sie der Kontaktaufnahme zu.",
    submit: "Daten senden",
    leadThanks: "Danke! Ihre Daten wurden gesendet.",
    leadFailed: "Das hat nicht geklappt. Bitte versuchen Sie es erneut.",
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
    person: "Parler à une personne",
    details: "Laisser vos coordonnées",
    requested: "Une personne a été invitée à vous rejoindre. Sa réponse apparaîtra ici.",
    agent: "Assistance",
    closed: "Cette conversation avec une personne est terminée.",
    required: "Veuillez remplir ce champ.",
    email: "Veuillez saisir une adresse e-mail.",
    phone: "Veuillez saisir un numéro de téléphone.",
    consent: "Veuillez accepter d’être contacté.",
    submit: "Envoyer mes coordonnées",
    leadThanks: "Merci ! Vos coordonnées ont été envoyées.",
    leadFailed: "Cela n’a pas fonctionné. Veuillez réessayer.",
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
    person: "Hablar con una persona",
    details: "Dejar sus datos",
    requested: "Se ha pedido a una persona que se una. Su respuesta aparecerá aquí.",
    agent: "Soporte",
    closed: "Esta conversación con una persona ha terminado.",
    required: "Rellene este campo.",
    email: "Introduzca una dirección de correo electrónico.",
    phone: "Introduzca un número de teléfono.",
    consent: "Acepte que le contactemos.",
    submit: "Enviar datos",
    leadThanks: "¡Gracias! Sus datos se han enviado.",
    leadFailed: "No ha funcionado. Inténtelo de nuevo.",
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
    person: "التحدث إلى شخص",
    details: "اترك بياناتك",
    requested: "طُلب من شخص الانضمام. سيظهر رده هنا.",
    agent: "الدعم",
    closed: "انتهت هذه المحادثة مع الشخص.",
    required: "يرجى ملء هذا الحقل.",
    email: "يرجى إدخال عنوان بريد إلكتروني.",
    phone: "يرجى إدخال رقم هاتف.",
    consent: "يرجى الموافقة على التواصل معك.",
    submit: "إرسال البيانات",
    leadThanks: "شكرًا! تم إرسال بياناتك.",
    leadFailed: "لم ينجح ذلك. يرجى المحاولة مرة أخرى.",
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
    person: "担当者と話す",
    details: "連絡先を残す",
    requested: "担当者に参加を依頼しました。返信はここに表示されます。",
    agent: "サポート",
    closed: "担当者との会話は終了しました。",
    required: "この項目を入力してください。",
    email: "メールアドレスを入力してください。",
    phone: "電話番号を入力してください。",
    consent: "連絡を受けることに同意してください。",
    submit: "送信する",
    leadThanks: "ありがとうございます。連絡先を送信しました。",
    leadFailed: "うまくいきませんでした。もう一度お試しください。",
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
